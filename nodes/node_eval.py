"""Measurements of the front nodes on a manifest (`dragoman node eval NODE --manifest M`).

- speaker_encoder: verification EER over every pair of utterances (cosine of embeddings), the
  same with d-vectors rebuilt from the 32 tokens (what the decoder gets), mean cosine of
  same-speaker, different-speaker and same-speaker-other-language pairs, token codebook use.
- content_tokenizer: CER per language of the CTC head (language given as the eval knows it;
  greedy, or LM-fused beam search where the checkpoint has LMs: `dragoman node lm`), token
  rate, codebook perplexity and used codes, and a speaker-ID probe on the tokens.
- emotion_tokenizer: accuracy against the manifest's `emotion`, codebook use, speaker-ID probe.

The speaker probe (`speaker_probe`) asks whether a stream that should not say who speaks does:
a logistic regression on per-utterance features of the tokens, trained on ~75 % of the
utterances and scored on the rest, split by `pair_id` so that the two languages of one sentence
never straddle the split. Chance is the majority speaker's share of the scored utterances.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from dragoman.nodes.errors import DragomanError
from dragoman.nodes.manifest import read_manifest
from dragoman.nodes.modules.fsq import codebook_usage

PROBE_TEST_SHARE = 0.25


def equal_error_rate(scores: np.ndarray, same: np.ndarray) -> float:
    """The rate at which false accepts equal false rejects when thresholding `scores` (higher =
    more alike); interpolated between the two closest thresholds."""
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    if same.all() or not same.any():
        raise DragomanError("EER needs both same-speaker and different-speaker pairs")
    order = np.argsort(-scores, kind="stable")
    hits = same[order]
    # Accepting the top-k pairs: false rejects = targets not yet accepted, false accepts = impostors accepted.
    far = np.concatenate([[0.0], np.cumsum(~hits) / (~hits).sum()])
    frr = np.concatenate([[1.0], 1.0 - np.cumsum(hits) / hits.sum()])
    k = int(np.argmax(far >= frr))
    if k == 0:
        return float(far[0])
    d0, d1 = frr[k - 1] - far[k - 1], frr[k] - far[k]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(far[k - 1] + t * (far[k] - far[k - 1]))


def pair_statistics(embeddings: torch.Tensor, speakers: Sequence[str], langs: Sequence[str]) -> dict[str, float]:
    """EER and mean cosines over all unordered pairs of utterances."""
    unit = torch.nn.functional.normalize(embeddings.double(), dim=-1)
    cos = (unit @ unit.T).numpy()
    i, j = np.triu_indices(len(speakers), k=1)
    spk, lang = np.asarray(speakers), np.asarray(langs)
    same = spk[i] == spk[j]
    xling = same & (lang[i] != lang[j])
    scores = cos[i, j]
    return {
        "eer": equal_error_rate(scores, same),
        "same_spk_cos": float(scores[same].mean()),
        "diff_spk_cos": float(scores[~same].mean()),
        "xling_same_spk_cos": float(scores[xling].mean()) if xling.any() else float("nan"),
    }


def _in_probe_test(group: str) -> bool:
    digest = hashlib.sha1(group.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < PROBE_TEST_SHARE


def speaker_probe(features: np.ndarray, speakers: Sequence[str], groups: Sequence[str]) -> dict[str, float]:
    """Accuracy of a logistic-regression speaker classifier on held-out groups, and chance."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    test = np.array([_in_probe_test(str(g)) for g in groups])
    labels = np.asarray(speakers)
    if test.all() or not test.any() or len(set(labels[~test])) < 2:
        raise DragomanError("speaker probe needs utterances of at least two speakers on both sides of the split")
    scaler = StandardScaler().fit(features[~test])
    probe = LogisticRegression(max_iter=3000, C=1.0)
    probe.fit(scaler.transform(features[~test]), labels[~test])
    accuracy = float((probe.predict(scaler.transform(features[test])) == labels[test]).mean())
    _, counts = np.unique(labels[test], return_counts=True)
    return {"speaker_probe_acc": accuracy, "speaker_probe_chance": float(counts.max() / counts.sum()),
            "speaker_probe_utterances": int(test.sum())}


def token_histograms(ids: Sequence[torch.Tensor], codebook_size: int) -> np.ndarray:
    """Per-utterance share of each code [N, codebook_size] (a bag of tokens)."""
    out = np.zeros((len(ids), codebook_size), dtype=np.float32)
    for row, x in zip(out, ids):
        np.add.at(row, x.numpy(), 1.0)
        row /= max(1, len(x))
    return out


def positional_one_hot(ids: torch.Tensor, codebook_size: int) -> np.ndarray:
    """Global tokens [N, K] -> [N, K * codebook_size] one-hot per position."""
    n, k = ids.shape
    out = np.zeros((n, k * codebook_size), dtype=np.float32)
    out[np.arange(n)[:, None], np.arange(k)[None, :] * codebook_size + ids.numpy()] = 1.0
    return out


def load_rows(manifest: str | Path, limit: int | None = None, need: Sequence[str] = ()) -> list[dict]:
    rows = read_manifest(manifest)
    if limit:
        rows = rows[:limit]
    if not rows:
        raise DragomanError(f"{manifest}: manifest is empty")
    for number, row in enumerate(rows, start=1):
        missing = [k for k in ("audio_filepath", *need) if k not in row]
        if missing:
            raise DragomanError(f"{manifest}:{number}: missing field(s) {missing}")
    return rows


def load_audio(rows: Sequence[dict]) -> list[torch.Tensor]:
    from tqdm import tqdm

    from dragoman.nodes.audio.io import read_audio

    return [read_audio(r["audio_filepath"]) for r in tqdm(rows, desc="reading audio", unit="utt", leave=False)]


def in_batches(fn: Callable[[list[int]], list], lengths: Sequence[int], batch_size: int, desc: str) -> list:
    """fn(indices) over batches of similar length (little padding); results in input order."""
    from tqdm import tqdm

    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    out: list = [None] * len(lengths)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", leave=False):
        index = order[start : start + batch_size]
        for i, value in zip(index, fn(index)):
            out[i] = value
    return out


def _lengths(wavs: Sequence[torch.Tensor]) -> list[int]:
    return [int(w.shape[-1]) for w in wavs]


def evaluate_speaker_encoder(manifest, checkpoint=None, limit=None, batch_size=32) -> dict:
    from dragoman.nodes.speaker_encoder import SpeakerEncoder

    rows = load_rows(manifest, limit, need=("speaker", "lang"))
    node = SpeakerEncoder.load(checkpoint)
    wavs = load_audio(rows)

    def run(index):
        out = node.run(audio=[wavs[i] for i in index])
        return list(zip(out["speaker_tokens"], out["speaker_embedding"]))

    outs = in_batches(run, _lengths(wavs), batch_size, "speaker_encoder")
    ids = torch.stack([o[0] for o in outs])
    embeddings = torch.stack([o[1] for o in outs])
    speakers, langs = [r["speaker"] for r in rows], [r["lang"] for r in rows]
    result = {"node": "speaker_encoder", "manifest": str(manifest), "utterances": len(rows),
              "speakers": len(set(speakers)), **pair_statistics(embeddings, speakers, langs)}
    result["eer_tokens"] = pair_statistics(node.tokens_to_dvector(ids), speakers, langs)["eer"]
    usage = codebook_usage(ids, node.codebook_size)
    result.update(codebook_perplexity=usage["perplexity"], used_codes=usage["used_codes"], codebook_size=usage["codebook_size"])
    return result


def evaluate_content_tokenizer(manifest, checkpoint=None, limit=None, batch_size=16) -> dict:
    from dragoman.nodes.content_tokenizer import ContentTokenizer
    from dragoman.nodes.text_units import cer, normalize_text

    rows = load_rows(manifest, limit, need=("text", "lang"))
    node = ContentTokenizer.load(checkpoint)
    wavs = load_audio(rows)

    def run(index):
        out = node.run(audio=[wavs[i] for i in index], language=[rows[i]["lang"] for i in index])
        return list(zip(out["content_tokens"], out["transcript"]))

    outs = in_batches(run, _lengths(wavs), batch_size, "content_tokenizer")
    ids = [o[0] for o in outs]
    result = {"node": "content_tokenizer", "manifest": str(manifest), "utterances": len(rows)}
    for lang in ("zh", "en"):
        pick = [i for i, r in enumerate(rows) if r["lang"] == lang]
        if pick:
            result[f"cer_{lang}"] = cer([outs[i][1] for i in pick], [normalize_text(rows[i]["text"], lang) for i in pick])
    seconds = sum(w.shape[0] for w in wavs) / node.cfg.sample_rate
    result["token_rate_hz"] = sum(len(x) for x in ids) / seconds
    usage = codebook_usage(torch.cat(ids), node.codebook_size)
    result.update(codebook_perplexity=usage["perplexity"], used_codes=usage["used_codes"], codebook_size=usage["codebook_size"])
    if all("speaker" in r for r in rows):
        features = token_histograms(ids, node.codebook_size)
        result.update(speaker_probe(features, [r["speaker"] for r in rows], [r.get("pair_id", i) for i, r in enumerate(rows)]))
    return result


def evaluate_emotion_tokenizer(manifest, checkpoint=None, limit=None, batch_size=32) -> dict:
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer

    rows = load_rows(manifest, limit, need=("emotion",))
    node = EmotionTokenizer.load(checkpoint)
    wavs = load_audio(rows)

    def run(index):
        out = node.run(audio=[wavs[i] for i in index])
        return list(zip(out["emotion_tokens"], out["emotion"]))

    outs = in_batches(run, _lengths(wavs), batch_size, "emotion_tokenizer")
    ids = torch.stack([o[0] for o in outs])
    predicted = [o[1] for o in outs]
    truth = [r["emotion"] for r in rows]
    result = {"node": "emotion_tokenizer", "manifest": str(manifest), "utterances": len(rows),
              "accuracy": float(np.mean([p == t for p, t in zip(predicted, truth)]))}
    per_class = {e: float(np.mean([p == t for p, t in zip(predicted, truth) if t == e])) for e in sorted(set(truth))}
    result["accuracy_per_emotion"] = per_class
    size = node.net.fsq.codebook_size
    usage = codebook_usage(ids, size)
    result.update(codebook_perplexity=usage["perplexity"], used_codes=usage["used_codes"], codebook_size=size)
    if all("speaker" in r for r in rows):
        result.update(speaker_probe(positional_one_hot(ids, size), [r["speaker"] for r in rows],
                                    [r.get("pair_id", i) for i, r in enumerate(rows)]))
    return result
