"""Audio + label datasets read from NeMo-style manifests, for training the nodes."""
from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import Dataset

from dragoman.nodes.audio.io import read_audio
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.manifest import read_manifest


class LabelledAudioDataset(Dataset):
    """(waveform, label index) pairs: `label_key` names a manifest field whose values are in
    `labels`. Lines whose label is unknown are an error (a typo would silently shrink a class)."""

    def __init__(self, manifest: str, label_key: str, labels: Sequence[str], max_seconds: float | None = None):
        self.rows = read_manifest(manifest)
        if not self.rows:
            raise DragomanError(f"{manifest}: manifest is empty")
        self.labels = list(labels)
        index = {name: i for i, name in enumerate(self.labels)}
        self.targets = []
        for number, row in enumerate(self.rows, start=1):
            value = row.get(label_key)
            if value not in index:
                raise DragomanError(f"{manifest}:{number}: {label_key}={value!r} is not one of {self.labels}")
            self.targets.append(index[value])
        if max_seconds is not None:
            keep = [i for i, r in enumerate(self.rows) if float(r.get("duration", 0.0)) <= max_seconds]
            self.rows = [self.rows[i] for i in keep]
            self.targets = [self.targets[i] for i in keep]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return read_audio(self.rows[i]["audio_filepath"]), self.targets[i]


def collate_labelled(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (wav [B, T] zero-padded, lengths [B], labels [B])."""
    from dragoman.nodes.trainable import pad_batch

    wavs, labels = zip(*batch)
    wav, lengths = pad_batch(list(wavs))
    return wav, lengths, torch.tensor(labels, dtype=torch.long)
