"""Resynthesis measurements of the codec (`dragoman node eval codec --manifest M`).

Every utterance goes wav -> SemanticTokenizer (50 Hz tokens) + its own speaker tokens
(SpeakerEncoder) + its emotion tokens (EmotionTokenizer) -> Decoder -> wav'. Reported:

- `cer_ratio`: corpus CER of the ContentTokenizer's recogniser (`transcribe`, language given) on
  the resynthesis over its CER on the originals (what the codec costs intelligibility).
- `spk_sim_ratio`: mean cosine(resynthesis, original) under an independent speaker judge
  (resemblyzer's GE2E, `eval.judges`) over the judge's same-speaker baseline (mean cosine of two
  different source recordings of one speaker): 1.0 = as alike as two takes of the same voice.
- `f0_corr`: mean Pearson correlation of the F0 contours (semitones, frames voiced in both;
  `eval.prosody.contour_correlations`, the translation eval's definition).
- `emotion_agreement`: share of utterances whose resynthesis the EmotionTokenizer labels as it
  labels the original (agreement with the manifest labels is reported beside it).
- `token_rate_hz`: semantic tokens per second of audio.
- `voice_swap_ok`: each utterance is decoded again with the speaker tokens of an utterance by
  another speaker (the next one in the manifest); it counts when the judge finds the result
  closer to that speaker's centroid (mean embedding of their source recordings here) than to
  the original speaker's.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from dragoman.nodes.errors import DragomanError
from dragoman.nodes.node_eval import in_batches, load_audio, load_rows


def swap_partners(speakers: Sequence[str]) -> list[int | None]:
    """For each utterance, the next utterance (cyclically) spoken by someone else, or None."""
    n = len(speakers)
    out: list[int | None] = []
    for i in range(n):
        out.append(next(((i + k) % n for k in range(1, n) if speakers[(i + k) % n] != speakers[i]), None))
    return out


def _lengths(wavs: Sequence[torch.Tensor]) -> list[int]:
    return [int(w.shape[0]) for w in wavs]


def _decode_all(decoder, tokens, speakers, emotions, batch_size: int, desc: str) -> tuple[list, float]:
    start = time.perf_counter()
    out = in_batches(lambda idx: decoder.decode([tokens[i] for i in idx], [speakers[i] for i in idx],
                                                [emotions[i] for i in idx]),
                     [len(t) for t in tokens], batch_size, desc)
    return out, time.perf_counter() - start


def _cer_by_language(recognizer, rows, wavs, batch_size: int) -> tuple[float, dict]:
    """Corpus CER over all rows (edits / reference characters) and per language."""
    from dragoman.nodes.text_units import edit_distance, normalize_text

    edits, chars, per_lang = 0, 0, {}
    for lang in sorted({r["lang"] for r in rows}):
        pick = [i for i, r in enumerate(rows) if r["lang"] == lang]
        hyps = recognizer.transcribe([wavs[i] for i in pick], lang=lang, batch_size=batch_size)
        refs = [normalize_text(rows[i]["text"], lang) for i in pick]
        e = sum(edit_distance(h, r) for h, r in zip(hyps, refs))
        c = sum(len(r) for r in refs)
        per_lang[lang] = e / max(c, 1)
        edits, chars = edits + e, chars + c
    return edits / max(chars, 1), per_lang


def _speaker_scores(judge, rows, wavs, resynth, swapped, partners) -> dict:
    from dragoman.nodes.eval.judges import pair_cosines, speaker_baselines

    src = judge.embed(wavs)
    out = judge.embed(resynth)
    speakers = [r["speaker"] for r in rows]
    same, diff, n_same, _ = speaker_baselines(src, speakers, [r["audio_filepath"] for r in rows])
    if same is None or n_same == 0:
        raise DragomanError("codec eval: the speaker baseline needs two recordings of one speaker in the manifest")
    sims = pair_cosines(src, out)
    result = {"spk_sim": float(sims.mean()), "spk_same_baseline": same, "spk_diff_baseline": diff,
              "spk_sim_ratio": float(sims.mean()) / same}
    keep = [i for i, j in enumerate(partners) if j is not None]
    if keep:
        names = sorted(set(speakers))
        centroids = np.stack([src[[k for k, s in enumerate(speakers) if s == name]].mean(0) for name in names])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        index = {name: k for k, name in enumerate(names)}
        emb = judge.embed([swapped[i] for i in keep])
        to_new = np.array([emb[n] @ centroids[index[speakers[partners[i]]]] for n, i in enumerate(keep)])
        to_old = np.array([emb[n] @ centroids[index[speakers[i]]] for n, i in enumerate(keep)])
        result.update(voice_swap_ok=float((to_new > to_old).mean()), voice_swap_sim_new=float(to_new.mean()),
                      voice_swap_sim_old=float(to_old.mean()), voice_swap_utterances=len(keep))
    return result


def evaluate_codec(manifest, checkpoint=None, limit=None, batch_size=16, judge_spec: str | None = None,
                   semantic_checkpoint: str | None = None) -> dict:
    """All resynthesis metrics on a manifest (`checkpoint`: a decoder .nemo, `semantic_checkpoint`:
    the semantic tokenizer it was trained on; default nodes otherwise). Manifest lines need
    `text`, `lang` and `speaker`."""
    from dragoman.nodes.content_tokenizer import ContentTokenizer
    from dragoman.nodes.decoder import Decoder
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer
    from dragoman.nodes.eval.judges import JUDGES, default_judge_spec
    from dragoman.nodes.eval.prosody import Contours, contour_correlations
    from dragoman.nodes.semantic_tokenizer import SemanticTokenizer
    from dragoman.nodes.speaker_encoder import SpeakerEncoder

    rows = load_rows(manifest, limit, need=("text", "lang", "speaker"))
    wavs = load_audio(rows)
    lengths = _lengths(wavs)
    semantic, speaker, emotion = SemanticTokenizer.load(semantic_checkpoint), SpeakerEncoder.default(), EmotionTokenizer.default()
    decoder = Decoder.load(checkpoint)
    if semantic.codebook_size != decoder.codebook_size:
        raise DragomanError(f"decoder {checkpoint or 'default'} reads {decoder.codebook_size} semantic codes, the semantic "
                            f"tokenizer {semantic_checkpoint or 'default'} writes {semantic.codebook_size}: pass the one it was trained on")

    tokens = in_batches(lambda idx: semantic.run(audio=[wavs[i] for i in idx])["semantic_tokens"], lengths, batch_size, "semantic tokens")
    spk = in_batches(lambda idx: speaker.run(audio=[wavs[i] for i in idx])["speaker_tokens"], lengths, batch_size, "speaker tokens")
    emo = in_batches(lambda idx: emotion.run(audio=[wavs[i] for i in idx])["emotion_tokens"], lengths, batch_size, "emotion tokens")
    resynth, decode_s = _decode_all(decoder, tokens, spk, emo, batch_size, "decoding")
    partners = swap_partners([r["speaker"] for r in rows])
    swap_idx = [i for i, j in enumerate(partners) if j is not None]
    swapped_list, _ = _decode_all(decoder, [tokens[i] for i in swap_idx], [spk[partners[i]] for i in swap_idx],
                                  [emo[i] for i in swap_idx], batch_size, "decoding (voice swap)")
    swapped = dict(zip(swap_idx, swapped_list))

    seconds = sum(lengths) / 16000
    result = {"node": "codec", "manifest": str(manifest), "utterances": len(rows),
              "token_rate_hz": sum(len(t) for t in tokens) / seconds,
              "decode_rtf": decode_s / (sum(len(w) for w in resynth) / 16000)}

    recognizer = ContentTokenizer.default()
    cer_src, src_lang = _cer_by_language(recognizer, rows, wavs, batch_size)
    cer_out, out_lang = _cer_by_language(recognizer, rows, resynth, batch_size)
    result.update(cer_source=cer_src, cer_resynth=cer_out, cer_ratio=cer_out / max(cer_src, 1e-3),
                  **{f"cer_resynth_{k}": v for k, v in out_lang.items()})

    f0 = [contour_correlations(Contours.of(a), Contours.of(b))[0] for a, b in zip(wavs, resynth)]
    defined = [r for r in f0 if r is not None]
    result.update(f0_corr=float(np.mean(defined)) if defined else None, f0_corr_utterances=len(defined))

    src_labels = in_batches(lambda idx: emotion.run(audio=[wavs[i] for i in idx])["emotion"], lengths, batch_size, "emotion (source)")
    out_labels = in_batches(lambda idx: emotion.run(audio=[resynth[i] for i in idx])["emotion"], lengths, batch_size, "emotion (resynthesis)")
    result["emotion_agreement"] = float(np.mean([a == b for a, b in zip(src_labels, out_labels)]))
    if all("emotion" in r for r in rows):
        result["emotion_accuracy_source"] = float(np.mean([r["emotion"] == a for r, a in zip(rows, src_labels)]))
        result["emotion_accuracy_resynth"] = float(np.mean([r["emotion"] == b for r, b in zip(rows, out_labels)]))

    judge = JUDGES.create(judge_spec or default_judge_spec())
    result["speaker_judge"] = judge.info.name
    result.update(_speaker_scores(judge, rows, wavs, resynth, swapped, partners))
    return result
