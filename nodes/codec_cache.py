"""Feature caches for training the codec nodes, built once so epochs never re-run an encoder.

A cache holds, per manifest line, streams on the 50 Hz token grid (`rate` 1: semantic tokens,
content features, prosody) or on the 100 Hz frame grid (`rate` 2: log-mel, log F0, voicing),
concatenated along time with one token count per line, plus per-line global streams (speaker and
emotion tokens). It is one `torch.save` of tensors, strings and numbers, loaded back with
`weights_only=True`. A fingerprint (the SHA-256 of the manifest and of each checkpoint it was
computed with) is stored with it; a stale cache is rebuilt, not silently reused: decoder targets
made by an older semantic tokenizer would teach the decoder the wrong tokens. Contents, not
paths or mtimes: reinstalling the package rewrites its default checkpoints byte for byte with new
mtimes, which used to throw away a 27,000-line decoder cache (17 minutes to rebuild here).

On the corpus (~4000 lines, 2 CPU cores) building the decoder cache is dominated by the speaker
and semantic encoders; the training epochs that follow only read tensors.
"""
from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from dragoman.nodes.errors import DragomanError


def fingerprint(manifest: str, sources: dict[str, str | None]) -> dict:
    """What a cache depends on: the manifest file and each source checkpoint, by content."""
    def stamp(path: str | None):
        if not path:
            return None
        p = Path(path)
        if not p.is_file():
            return [str(p), None]
        digest = hashlib.sha256()
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return [p.stat().st_size, digest.hexdigest()]

    return {"manifest": stamp(manifest), **{name: stamp(path) for name, path in sorted(sources.items())}}


class FrameCache:
    """Variable-length streams of many utterances, concatenated; see the module docstring."""

    def __init__(self, lengths: torch.Tensor, streams: dict[str, torch.Tensor], rates: dict[str, int],
                 globals_: dict[str, torch.Tensor], meta: dict):
        self.lengths = lengths.long()
        self.streams, self.rates, self.globals, self.meta = streams, rates, globals_, meta
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.lengths.cumsum(0)])

    def __len__(self) -> int:
        return len(self.lengths)

    def item(self, i: int, start: int = 0, count: int | None = None) -> dict[str, torch.Tensor]:
        """Line i's streams from token `start` for `count` tokens (all when None)."""
        n = int(self.lengths[i])
        count = n - start if count is None else min(count, n - start)
        out = {}
        for name, data in self.streams.items():
            r = self.rates[name]
            base = int(self.offsets[i]) * r
            out[name] = data[..., base + start * r : base + (start + count) * r]
        for name, data in self.globals.items():
            out[name] = data[i]
        out["length"] = torch.tensor(count)
        return out

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save({"lengths": self.lengths, "streams": self.streams, "rates": self.rates,
                    "globals": self.globals, "meta": self.meta}, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> "FrameCache":
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
            return cls(raw["lengths"], raw["streams"], raw["rates"], raw["globals"], raw["meta"])
        except (OSError, KeyError, RuntimeError, ValueError) as err:
            raise DragomanError(f"{path}: unreadable codec cache ({str(err).splitlines()[0]})") from None

    @classmethod
    def from_items(cls, items: Sequence[dict[str, torch.Tensor]], rates: dict[str, int], meta: dict) -> "FrameCache":
        """Build from per-line dicts holding every stream in `rates` (time last) and the globals."""
        lengths = torch.tensor([int(it["length"]) for it in items])
        streams = {name: torch.cat([it[name] for it in items], dim=-1) for name in rates}
        global_names = [k for k in items[0] if k not in rates and k != "length"]
        globals_ = {name: torch.stack([it[name] for it in items]) for name in global_names}
        return cls(lengths, streams, rates, globals_, meta)


def load_or_build(path: str | Path, expected: dict, build: Callable[[], FrameCache]) -> FrameCache:
    """The cache at `path` if its fingerprint is `expected`, else a freshly built (and saved) one."""
    if Path(path).is_file():
        cache = FrameCache.load(path)
        if cache.meta.get("fingerprint") == expected:
            return cache
    cache = build()
    cache.meta["fingerprint"] = expected
    cache.save(path)
    return cache


class CropDataset(Dataset):
    """Cache lines as training examples: a random `crop_tokens` window when training, the first
    `crop_tokens` tokens otherwise (fixed validation numbers). With `audio` (one path per line)
    each example also gets the matching waveform samples as `wav` (320 per token)."""

    def __init__(self, cache: FrameCache, crop_tokens: int, train: bool, audio: Sequence[str] | None = None):
        self.cache, self.crop, self.train, self.audio = cache, crop_tokens, train, audio

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        n = int(self.cache.lengths[i])
        start = random.randint(0, max(0, n - self.crop)) if self.train else 0
        item = self.cache.item(i, start, self.crop)
        if self.audio is not None:
            from dragoman.nodes.audio.io import read_audio
            from dragoman.nodes.modules.codec_features import TOKEN_HOP, pad_to_tokens

            wav = pad_to_tokens(read_audio(self.audio[i]))
            item["wav"] = wav[start * TOKEN_HOP : (start + int(item["length"])) * TOKEN_HOP]
        return item


def collate_crops(items: list[dict[str, torch.Tensor]], rates: dict[str, int]) -> dict[str, torch.Tensor]:
    """Pad every time stream to the longest item (zeros; `lengths` says what is real)."""
    lengths = torch.stack([it["length"] for it in items])
    longest = int(lengths.max())
    batch = {"lengths": lengths}
    for name in items[0]:
        if name == "length":
            continue
        if name in rates:
            r = rates[name]
            first = items[0][name]
            out = first.new_zeros(len(items), *first.shape[:-1], longest * r)
            for k, it in enumerate(items):
                out[k, ..., : it[name].shape[-1]] = it[name]
            batch[name] = out
        else:
            batch[name] = torch.stack([it[name] for it in items])
    return batch


def batched_rows(rows: Sequence[dict], batch_size: int, desc: str):
    """Manifest rows in batches of similar duration (little padding), with a progress bar;
    yields (indices, rows)."""
    from tqdm import tqdm

    order = sorted(range(len(rows)), key=lambda i: float(rows[i].get("duration", 0.0)))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for idx in tqdm(chunks, desc=desc, unit="batch"):
        yield idx, [rows[i] for i in idx]
