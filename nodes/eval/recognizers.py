"""Speech recognition for Speech-BLEU: the recogniser protocol, padded batching, transcript files.

A recogniser is any object with
    name: str
    transcribe(wavs: list[Tensor], lang: str) -> list[str]     # 16 kHz mono, any lengths
registered by name in `RECOGNIZERS` (see `plugins`). It receives utterances of different
lengths in one call and must give each the text it would give it alone: padding has to be
masked. That is not a detail: batched Whisper without an attention mask turned a published
16-23 Speech-BLEU into 1.5 in a UniSS reproduction (DESIGN §6). `pad_waveforms` gives the
padded batch with its lengths and mask; `transcribe_all` sorts by length (little padding),
batches, restores the order, and first checks on a few utterances that batched output equals
one-by-one output, refusing to score otherwise.

Until a recogniser node exists, transcripts can come from a file (`load_transcripts`): JSONL
lines {"audio": PATH, "text": ...} (`output_audio` is accepted for `audio`) or TSV lines
`PATH<TAB>TEXT`; relative paths are resolved against the file's folder.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol, Sequence

from dragoman.nodes.errors import DragomanError
from dragoman.nodes.eval.judges import Registry

RECOGNIZERS = Registry("recogniser", "dragoman.eval.recognizers")
# Used when neither transcripts nor a recogniser are given, once something registers it: the
# ContentTokenizer's recognition head (DESIGN §1), which loads its committed default checkpoint.
DEFAULT_RECOGNIZER = "content-tokenizer"
# Utterances compared batched vs alone before a recogniser's output is trusted.
BATCH_CHECK_ITEMS = 4


class Recognizer(Protocol):
    name: str

    def transcribe(self, wavs: Sequence, lang: str) -> list[str]: ...


class BatchLeakError(DragomanError):
    """A recogniser whose text for an utterance changes with what else is in its batch."""


def pad_waveforms(wavs: Sequence):
    """1-D tensors -> (batch [B, T_max] zero padded, lengths [B] long, mask [B, T_max] bool with
    True on real samples)."""
    import torch

    if not wavs:
        raise ValueError("empty batch")
    lengths = torch.tensor([int(w.shape[-1]) for w in wavs], dtype=torch.long)
    batch = torch.zeros(len(wavs), int(lengths.max()), dtype=torch.float32)
    for i, w in enumerate(wavs):
        batch[i, : w.shape[-1]] = w.to(torch.float32)
    mask = torch.arange(batch.shape[1])[None, :] < lengths[:, None]
    return batch, lengths, mask


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def check_batch_invariance(recognizer: Recognizer, wavs: Sequence, lang: str) -> list[int]:
    """Indices whose batched transcript differs from their one-by-one transcript (empty = OK).

    The batch mixes the given utterances as they are, so the shorter ones carry padding."""
    batched = recognizer.transcribe(list(wavs), lang)
    alone = [recognizer.transcribe([w], lang)[0] for w in wavs]
    return [i for i, (a, b) in enumerate(zip(batched, alone)) if a != b]


def transcribe_all(
    recognizer: Recognizer,
    wavs: Sequence,
    lang: str,
    batch_size: int = 16,
    check: bool = True,
    progress: bool = False,
) -> list[str]:
    """Transcripts of `wavs` in their order, batched by length.

    With `check`, the shortest and longest utterances are first transcribed together and alone;
    any difference raises BatchLeakError, because then every batched number would be wrong."""
    if not wavs:
        return []
    lengths = [int(w.shape[-1]) for w in wavs]
    if check and len(wavs) > 1:
        by_len = sorted(range(len(wavs)), key=lengths.__getitem__)
        half = BATCH_CHECK_ITEMS // 2
        probe = sorted(set(by_len[:half] + by_len[-half:]))
        bad = check_batch_invariance(recognizer, [wavs[i] for i in probe], lang)
        if bad:
            raise BatchLeakError(
                f"recogniser {recognizer.name!r} gives different text for an utterance batched "
                f"and alone ({len(bad)} of {len(probe)} checked): padding leaks into its output"
            )
    out: list[str | None] = [None] * len(wavs)
    batches = length_batches(lengths, batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc=f"recognising ({lang})", unit="batch", leave=False)
    for idx in batches:
        texts = recognizer.transcribe([wavs[i] for i in idx], lang)
        if len(texts) != len(idx):
            raise DragomanError(f"recogniser {recognizer.name!r} returned {len(texts)} texts for {len(idx)} inputs")
        for i, text in zip(idx, texts):
            out[i] = text
    return out  # type: ignore[return-value]


def load_transcripts(path: str | Path) -> dict[str, str]:
    """{resolved audio path: text} from a JSONL or TSV transcript file (format in the module
    docstring). Malformed lines are one-line errors naming the file and line."""
    p = Path(path)
    if not p.is_file():
        raise DragomanError(f"{p}: no such transcript file")
    table: dict[str, str] = {}
    with p.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                try:
                    row = json.loads(line)
                except ValueError:
                    raise DragomanError(f"{p}:{number}: not a JSON object line") from None
                audio = row.get("audio", row.get("output_audio"))
                text = row.get("text")
            else:
                audio, sep, text = line.rstrip("\n").partition("\t")
                if not sep:
                    raise DragomanError(f"{p}:{number}: expected PATH<TAB>TEXT or a JSON object")
            if not isinstance(audio, str) or not audio or not isinstance(text, str):
                raise DragomanError(f"{p}:{number}: needs an audio path and a text string")
            key = str(resolve_key(audio, p.parent))
            if key in table and table[key] != text:
                raise DragomanError(f"{p}:{number}: second, different transcript for {audio}")
            table[key] = text
    if not table:
        raise DragomanError(f"{p}: empty transcript file")
    return table


def resolve_key(audio: str | Path, base: Path) -> Path:
    """The lookup key of an audio path: absolute, normalised, symlinks not followed."""
    q = Path(audio)
    return Path(os.path.normpath(q if q.is_absolute() else base / q)).absolute()
