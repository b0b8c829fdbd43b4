"""Training data of the Translator: a token cache, sequences per task, packed batches.

1. `build_cache` runs the front nodes once over corpus manifests and stores, per utterance, its
   speaker / content / emotion / semantic tokens, text, language and pair id (torch.save of plain
   lists and dicts; read back with weights_only=True). Epochs never re-run the encoders.
2. `build_sequence` writes the training sequences of DESIGN §6:
   phase 1 aligns text and speech — ASR, S2TT, TTS, MT; phase 2 adds S2ST with chain-of-thought
   in quality, performance and direct modes (replaying phase-1 tasks); phase 3 is phase 2 on the
   `hq` subset (the recipe lowers and decays the learning rate). Every phase may add MT
   sequences from a text manifest (`dragoman data text`): on the 1,600 rendered pairs alone the
   8.5M-parameter default never learnt to translate (Text-BLEU 1-3), while 8 minutes of MT on
   60k grammar pairs reached BLEU 84 (zh) / 78 (en) on the test sentences.
   Each sequence is a `TrainSeq` (ids, number of prompt ids, alignment span): the loss covers
   only what follows the prompt; sequences that speak a text (tts, quality, performance) mark
   where that text and its speech lie, for the guided-attention loss (attention_guide.py).
3. `packed_loader` packs sequences first-fit into rows; `segment_ids` drive the block-diagonal
   mask (`translator.block_causal_mask`) and positions restart in every sequence.

Speed tokens: a sequence's speed is the utterance's speaking rate (characters per second of
speech) relative to its language's mean rate in the cache, so `<|speed_9|>` means "an average
pace" and the prompter maps the user's `--speed` onto the source's own pace.

Re-timed speech (`tempo_share`): the corpus's paces span little (its voices and emotions vary the
rate by about +-20 %), and trained on those alone the model ignored the speed token: --speed 0.7
and 2.0 both lengthened the output (README, session 6). A share of the sequences that speak
therefore get their target speech played at another tempo f (log-uniform in `tempo_range`):
its 50 Hz semantic tokens resampled to len / f by nearest neighbour (a token repeated or skipped
every few frames, as a frame-rate change of the codec's input), its word bounds scaled the same
way, and its speed token computed from the new duration. The source side never changes.
"""
from __future__ import annotations

import functools
import math
import random
from pathlib import Path
from typing import NamedTuple, Sequence

import torch

from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.speech_units import interleave as interleave_units
from dragoman.nodes.speech_units import split_units, written_units
from dragoman.nodes.text_units import normalize_text

TASKS = {1: ("asr", "s2tt", "tts", "mt"), 2: ("asr", "s2tt", "tts", "mt", "quality", "performance", "direct")}
S2ST = ("quality", "performance", "direct")  # ordered: the seeded draw below depends on it
SPEAKING = ("tts", *S2ST)  # tasks whose target is speech (what `tempo_share` may re-time)


def relative_speed(record: dict, mean_rate: dict[str, float]) -> float:
    rate = len(record["text"].replace(" ", "")) / max(record["speech_s"], 0.3)
    return float(min(3.5, max(0.1, rate / mean_rate[record["lang"]])))


def retimed(record: dict, tempo: float) -> dict:
    """`record` as if spoken `tempo` times faster: semantic tokens resampled to
    round(len / tempo) by nearest neighbour, `unit_bounds` and `speech_s` scaled to match."""
    tokens = list(record["semantic_tokens"])
    n = len(tokens)
    m = max(1, round(n / tempo))
    out = dict(record, semantic_tokens=[tokens[min(n - 1, (2 * j + 1) * n // (2 * m))] for j in range(m)],
               speech_s=float(record["speech_s"]) * m / max(n, 1))
    if record.get("unit_bounds") is not None:
        out["unit_bounds"] = [min(m, round(b * m / max(n, 1))) for b in record["unit_bounds"]]
    return out


def _draw_tempo(rng: random.Random, tempo_range: Sequence[float]) -> float:
    lo, hi = (float(x) for x in tempo_range)
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _g(r):
    return [U.global_token(t) for t in r["speaker_tokens"]]


def _glm(r):
    return [U.glm_token(t) for t in r["content_tokens"]]


def _emo(r):
    return [U.emotion_token(t) for t in r.get("emotion_tokens", [])]


def _sem(r):
    return [U.semantic_token(t) for t in r["semantic_tokens"]]


def _spoken(r, tok, interleave: str | None) -> list[int]:
    """The semantic ids of `r`, or with `interleave` ("chars" / "phones") each unit of its text,
    as characters or phonemes, before the speech that says it (nodes/speech_units.py; the cache
    needs `unit_bounds` and `unit_phones`: stage=align)."""
    speech = tok.convert_tokens_to_ids(_sem(r))
    if not interleave:
        return speech
    units = split_units(r["text"])
    bounds, phones = r.get("unit_bounds"), r.get("unit_phones")
    if bounds is None or len(bounds) != len(units) or (interleave == "phones" and phones is None):
        raise DragomanError("interleave_text needs word timings in the token cache: run "
                            "`python examples/train_translator.py stage=align` on it")
    return interleave_units(written_units(tok, units, phones if interleave == "phones" else None), speech, bounds)


class TrainSeq(NamedTuple):
    """A training sequence: ids, how many of them are prompt (no loss), and for sequences that
    speak a text, where that text and its semantic tokens lie: (text_start, text_end,
    speech_start, speech_end), ends exclusive (the guided-attention loss, attention_guide.py)."""
    ids: list[int]
    n_prompt: int
    align: tuple[int, int, int, int] | None = None


def build_sequence(task: str, src: dict, tgt: dict, tok, mean_rate: dict[str, float],
                   normalized_source: bool = False, interleave: str | None = None) -> TrainSeq:
    """One training sequence. `src` is what is heard, `tgt` what is said; single-utterance tasks
    (asr, tts) use `src` only. `normalized_source`: the MT source is in the recogniser's form
    (`normalize_text`: lower case, no punctuation), as a quality-mode transcript is.
    `interleave` ("chars" / "phones"): speech that says a text (tts, quality, performance) carries
    that text's units between its tokens (speech_units.py); such sequences need no guided-attention
    span."""
    ids = tok.convert_tokens_to_ids
    text = tok.encode_text
    L = U.LANG_TOKENS
    if task == "mt":  # text only: also built from text pairs that have no audio (no tokens, no speed)
        source = normalize_text(src["text"], src["lang"]) if normalized_source else src["text"]
        prompt = (ids([U.TASK_T2TT, L[tgt["lang"]], U.START_CONTENT]) + text(source)
                  + ids([U.END_CONTENT, U.WRITE_GENERATE, U.START_CONTENT]))
        return TrainSeq(prompt + text(tgt["text"]) + ids([U.END_CONTENT, U.IM_END]), len(prompt))
    s_speed, t_speed = U.speed_token(relative_speed(src, mean_rate)), U.speed_token(relative_speed(tgt, mean_rate))
    align = None
    head = [U.START_GLOBAL, *_g(src), U.END_GLOBAL]
    if task == "asr":
        prompt = ids([U.TASK_ASR, L[src["lang"]], *head, *_glm(src), U.WRITE_GENERATE, U.TASK_ASR, L[src["lang"]], s_speed, U.START_CONTENT])
        target = text(src["text"]) + ids([U.END_CONTENT, U.IM_END])
    elif task == "s2tt":
        prompt = ids([U.TASK_S2TT, L[tgt["lang"]], *head, *_glm(src), U.WRITE_GENERATE, U.TASK_S2TT, L[tgt["lang"]], t_speed, U.START_CONTENT])
        target = text(tgt["text"]) + ids([U.END_CONTENT, U.IM_END])
    elif task == "tts":
        lead, said = ids([U.TASK_TTS, L[src["lang"]], *head, *_emo(src), U.WRITE_GENERATE, U.START_CONTENT]), text(src["text"])
        prompt = lead + said + ids([U.END_CONTENT, s_speed, U.START_SEMANTIC])
        target = _spoken(src, tok, interleave) + ids([U.END_SEMANTIC, U.IM_END])
        if not interleave:
            align = (len(lead), len(lead) + len(said), len(prompt), len(prompt) + len(src["semantic_tokens"]))
    elif task in S2ST:
        inputs = U.PromptInputs(src["speaker_tokens"], src["content_tokens"], src["lang"], tgt["lang"],
                                src.get("emotion_tokens") or None, speed=relative_speed(tgt, mean_rate))
        names = U.build_prompt(task, inputs)
        if task == "quality":  # the ASR part of the prompt describes the source's own pace
            names[-2] = s_speed
        prompt = ids(names)
        spoken = interleave if task != "direct" else None  # direct mode writes no text for its speech to follow
        speech = ids([U.START_SEMANTIC]) + _spoken(tgt, tok, spoken) + ids([U.END_SEMANTIC, U.IM_END])
        said = text(tgt["text"])
        if task == "quality":  # the transcript in the recogniser's form, whoever writes it (controller.py)
            lead = text(normalize_text(src["text"], src["lang"])) + ids(U.quality_middle(tgt["lang"])[:-2] + [t_speed, U.START_CONTENT])
            target = lead + said + ids([U.END_CONTENT]) + speech
        elif task == "performance":
            lead = []
            target = said + ids([U.END_CONTENT]) + speech
        else:
            return TrainSeq(prompt + speech[1:], len(prompt))
        if interleave:
            return TrainSeq(prompt + target, len(prompt))
        text_start = len(prompt) + len(lead)
        speech_start = text_start + len(said) + 2  # <|end_content|> <|start_semantic_token|>
        align = (text_start, text_start + len(said), speech_start, speech_start + len(tgt["semantic_tokens"]))
    else:
        raise ValueError(f"unknown task {task!r}")
    return TrainSeq(prompt + target, len(prompt), align)


def load_cache(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise DragomanError(f"{p}: no token cache (build it with examples/train_translator.py stage=cache)")
    return torch.load(p, map_location="cpu", weights_only=True)


def pairs_of(records: list[dict]) -> list[tuple[dict, dict]]:
    """Both directions of every complete zh/en pair."""
    by_pair: dict[str, dict[str, dict]] = {}
    for r in records:
        by_pair.setdefault(str(r["pair_id"]), {})[r["lang"]] = r
    out = []
    for langs in by_pair.values():
        if "zh" in langs and "en" in langs:
            out += [(langs["zh"], langs["en"]), (langs["en"], langs["zh"])]
    return out


def load_text_pairs(path: str | Path) -> list[tuple[dict, dict]]:
    """Both directions of every pair of a text manifest (`dragoman data text`)."""
    from dragoman.nodes.manifest import read_manifest

    if not Path(path).is_file():
        raise DragomanError(f"{path}: no text pairs (write them with `dragoman data text`, or set text_mt_per_epoch=0)")
    pairs = pairs_of(read_manifest(path))
    if not pairs:
        raise DragomanError(f"{path}: no complete zh/en text pairs (rows need pair_id, lang and text)")
    return pairs


def text_mt_sequences(pairs: list[tuple[dict, dict]], count: int, tok, seed: int,
                      normalized_share: float = 0.5) -> list[TrainSeq]:
    """`count` MT sequences drawn (without replacement, a new draw per seed) from text pairs; a
    share of their sources in the recogniser's form, the form of quality-mode transcripts."""
    rng = random.Random(seed)
    chosen = rng.sample(pairs, k=min(count, len(pairs)))
    return [build_sequence("mt", src, tgt, tok, {}, normalized_source=rng.random() < normalized_share)
            for src, tgt in chosen]


def epoch_sequences(cache: dict, split: str, phase: int, tok, seed: int, hq_only: bool = False,
                    tasks_per_pair: int = 2, text_pairs: list | None = None,
                    text_mt: int = 0, tasks: list[str] | None = None, interleave: str | None = None,
                    tempo_share: float = 0.0, tempo_range: Sequence[float] = (0.6, 1.7)) -> list[TrainSeq]:
    """One epoch's sequences: `tasks_per_pair` tasks per corpus pair direction (drawn from the
    phase's tasks, or from `tasks` when given, e.g. ["tts"] to train one task alone), plus
    `text_mt` MT sequences from `text_pairs` (text without audio: the grammar is learnt from far
    more sentences than the rendered corpus holds). A share `tempo_share` of the sequences that
    speak (tts, quality, performance, direct) say it at another tempo (`retimed`)."""
    rng = random.Random(seed)
    records = cache["splits"][split]
    if hq_only:
        records = [r for r in records if r.get("hq", True)]
    if tasks:
        unknown = sorted(set(tasks) - set(TASKS[2]))
        if unknown:
            raise DragomanError(f"unknown translator task(s) {unknown}; tasks: {', '.join(TASKS[2])}")
    tasks = tuple(tasks) if tasks else TASKS[min(phase, 2)]
    seqs = []
    for src, tgt in pairs_of(records):
        chosen = rng.sample(tasks, k=min(tasks_per_pair, len(tasks)))
        s2st = [t for t in S2ST if t in tasks]
        if phase >= 2 and s2st and not any(t in S2ST for t in chosen):
            chosen[0] = rng.choice(s2st)
        for t in chosen:
            s_rec, t_rec = src, tgt
            if tempo_share > 0 and t in SPEAKING and rng.random() < tempo_share:
                tempo = _draw_tempo(rng, tempo_range)
                if t == "tts":  # tts speaks its own source
                    s_rec = retimed(src, tempo)
                else:
                    t_rec = retimed(tgt, tempo)
            seqs.append(build_sequence(t, s_rec, t_rec, tok, cache["mean_rate"], normalized_source=rng.random() < 0.5,
                                       interleave=interleave))
    if text_pairs and text_mt > 0:
        seqs += text_mt_sequences(text_pairs, text_mt, tok, seed=rng.randrange(2**31))
    rng.shuffle(seqs)
    return seqs


def pack(seqs: list[TrainSeq | tuple[list[int], int]], max_tokens: int, pad_id: int) -> list[dict]:
    """First-fit packing into rows of at most `max_tokens`; a longer sequence gets its own row.
    Each row keeps its sequences' alignment spans, shifted to row positions."""
    rows: list[list[tuple[list[int], int]]] = []
    room: list[int] = []
    for seq in sorted(seqs, key=lambda s: -len(s[0])):
        n = len(seq[0])
        for i, free in enumerate(room):
            if n <= free:
                rows[i].append(seq)
                room[i] -= n
                break
        else:
            rows.append([seq])
            room.append(max(0, max_tokens - n))
    out = []
    for row in rows:
        ids, labels, pos, seg, spans = [], [], [], [], []
        for k, (seq, n_prompt, *align) in enumerate(row):
            if align and align[0] is not None:
                spans.append([len(ids) + a for a in align[0]])
            ids += seq
            labels += [-100] * n_prompt + seq[n_prompt:]
            pos += list(range(len(seq)))
            seg += [k] * len(seq)
        out.append({"input_ids": ids, "labels": labels, "position_ids": pos, "segment_ids": seg, "align": spans})
    return out


def collate_rows(rows: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(r["input_ids"]) for r in rows)
    fill = {"input_ids": pad_id, "labels": -100, "position_ids": 0, "segment_ids": -1}
    batch = {key: torch.tensor([r[key] + [v] * (width - len(r[key])) for r in rows], dtype=torch.long)
             for key, v in fill.items()}
    most = max(1, max(len(r.get("align", [])) for r in rows))
    batch["align"] = torch.tensor([r.get("align", []) + [[-1] * 4] * (most - len(r.get("align", []))) for r in rows],
                                  dtype=torch.long)  # [B, K, 4], -1 rows are padding
    return batch


class PackedRows(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


@functools.lru_cache(maxsize=4)
def _read_version(loader, path: str, stamp: tuple[int, int]):
    return loader(path)


def read_once(loader, path: str):
    """`loader(path)` (`load_cache` or `load_text_pairs`), read once per file version: the
    training config reads the cache and the text pairs for the vocabulary, and the train loader
    is rebuilt every epoch (new task draw); each read of the 11k-utterance cache and the 120k
    text pairs costs 3.2 s + 1.0 s on this machine. Callers only read what they get."""
    p = Path(path)
    if not p.is_file():  # the loader's own one-line error
        return loader(path)
    st = p.stat()
    return _read_version(loader, str(p.resolve()), (st.st_mtime_ns, st.st_size))


def packed_loader(cfg, tok, train: bool, epoch: int = 0):
    cache = read_once(load_cache, cfg.cache)
    text_mt = int(cfg.get("text_mt_per_epoch") or 0)
    text_pairs = read_once(load_text_pairs, cfg.text_pairs) if (cfg.get("text_pairs") and text_mt > 0) else None
    seqs = epoch_sequences(cache, cfg.split, cfg.phase, tok, seed=cfg.seed + epoch, hq_only=cfg.hq_only,
                           tasks_per_pair=cfg.tasks_per_pair, text_pairs=text_pairs, text_mt=text_mt,
                           tasks=list(cfg.get("tasks") or []) or None,
                           interleave=cfg.get("interleave_units", "chars") if cfg.get("interleave") else None,
                           tempo_share=float(cfg.get("tempo_share") or 0.0) if train else 0.0,
                           tempo_range=list(cfg.get("tempo_range") or (0.6, 1.7)))
    rows = pack(seqs, cfg.max_tokens_per_row, tok.pad_id)
    return torch.utils.data.DataLoader(PackedRows(rows), batch_size=cfg.rows_per_batch, shuffle=train and cfg.shuffle,
                                       collate_fn=lambda b: collate_rows(b, tok.pad_id))


def codebook_size(node) -> int:
    """Size of the first quantiser inside a tokenizer node (FSQ/VQ modules expose `codebook_size`)."""
    for module in node.modules():
        size = getattr(module, "codebook_size", None)
        if isinstance(size, int) and size > 0:
            return size
    raise ValueError(f"{type(node).__name__}: no module exposes codebook_size")


def _token_port(node, kind) -> str:
    """The output port of `node` that carries tokens of `kind` (found by type, not by name)."""
    for name, t in node.output_types.items():
        if isinstance(t.elements_type, kind):
            return name
    raise ValueError(f"{type(node).__name__} has no output of type {kind.__name__}")


def read_split(paths: str | Sequence[str]) -> list[dict]:
    """The rows of one split: a manifest, or several (e.g. the corpus's train split plus more
    rendered pairs). Pair ids of the k-th of several manifests get a `k:` prefix, since every
    corpus numbers its pairs from train-000000 and pairs are matched by id."""
    from dragoman.nodes.manifest import read_manifest

    if isinstance(paths, (str, Path)):
        return read_manifest(paths)
    rows = []
    for k, path in enumerate(paths):
        rows += [dict(r, pair_id=f"{k}:{r['pair_id']}") if "pair_id" in r else r for r in read_manifest(path)]
    return rows


def build_cache(manifests: dict[str, str | Sequence[str]], out: str | Path, speaker, content, semantic, emotion=None,
                batch_size: int = 16, max_seconds: float | None = None) -> dict:
    """Run the front nodes over every manifest line once; save and return the token cache.
    A split is one manifest or a list of them (`read_split`). Batches hold utterances of similar
    `duration` (less padding; the nodes mask it), at most `batch_size` of them and, with
    `max_seconds`, at most that much padded audio; records keep manifest order."""
    from tqdm import tqdm

    from dragoman.nodes import types as T
    from dragoman.nodes.audio.io import read_audio
    from dragoman.nodes.data.filters import speech_duration
    from dragoman.nodes.distributed import bucket_by_length
    stages = [("speaker_tokens", speaker, T.SpeakerTokensType), ("content_tokens", content, T.ContentTokensType),
              ("semantic_tokens", semantic, T.SemanticTokensType)]
    if emotion is not None:
        stages.append(("emotion_tokens", emotion, T.EmotionTokensType))
    ports = [(key, node, _token_port(node, kind)) for key, node, kind in stages]
    splits: dict[str, list[dict]] = {}
    for split, path in manifests.items():
        rows = read_split(path)
        records: list[dict] = [{} for _ in rows]
        batches = bucket_by_length(rows, lambda r: float(r.get("duration") or 0.0), max_seconds, batch_size)
        for batch in tqdm(batches, desc=f"token cache {split}", unit="batch"):
            chunk = [rows[j] for j in batch]
            wavs = [read_audio(r["audio_filepath"]) for r in chunk]
            outputs = {key: node.run(audio=wavs)[port] for key, node, port in ports}
            for i, row in enumerate(chunk):
                rec = records[batch[i]]
                rec.update({k: row[k] for k in ("text", "lang", "pair_id", "speaker", "emotion") if k in row})
                rec["hq"] = bool(row.get("hq", True))
                rec["speech_s"] = float(speech_duration(wavs[i].numpy(), 16000))
                rec.update({key: [int(t) for t in outputs[key][i]] for key, _, _ in ports})
        splits[split] = records
    train = splits.get("train") or next(iter(splits.values()))
    mean_rate = {}
    for lang in ("zh", "en"):
        recs = [r for r in train if r["lang"] == lang]
        chars = sum(len(r["text"].replace(" ", "")) for r in recs)
        mean_rate[lang] = chars / max(sum(r["speech_s"] for r in recs), 1e-6) if recs else 1.0
    counts = {"num_global": codebook_size(speaker), "num_glm": codebook_size(content),
              "num_semantic": codebook_size(semantic), "num_emotion": codebook_size(emotion) if emotion is not None else 0}
    cache = {"splits": splits, "mean_rate": mean_rate, "token_counts": counts,
             "text_chars": sorted({c for recs in splits.values() for r in recs for c in r["text"]})}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(cache, out)
    return cache
