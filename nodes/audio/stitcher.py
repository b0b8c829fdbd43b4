"""Stitcher: translated segment pieces -> one waveform per source item, at the original offsets.

UniSS's infer.py pastes each generated chunk at its chunk's start into a buffer of zeros as long
as the input, and the output lasts max(input, generated) (UNISS_RELEASE item 15). The Stitcher
does the same for many segments and adds the one thing pasting leaves open: a piece that runs
past the next segment's start never overlaps it; the later piece is pushed back instead, so
every word stays audible. With `compress` on, a piece that would overrun is first sped up
(phase vocoder: tempo changes, pitch does not) by at most `max_speedup`, which keeps the output
close to the source duration (UniSS's SLC metric) without audible chipmunking; 1.25x is about
where time-scaled speech starts to sound hurried.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import torch

from dragoman.nodes.audio.vad import SegmentLayout
from dragoman.nodes.base import Node
from dragoman.nodes.errors import DragomanError, GraphError

# Phase-vocoder STFT: 32 ms frames with 75 % overlap resolve the harmonics of a 100 Hz voice.
_N_FFT, _HOP = 512, 128


@dataclasses.dataclass
class StitcherConfig:
    sample_rate: int = 16_000
    #: Speed up pieces that would overrun the next segment (or the end of the source).
    compress: bool = False
    #: Largest speed-up `compress` may apply.
    max_speedup: float = 1.25


def plan_placement(
    segments: Sequence[tuple[int, int]], lengths: Sequence[int], total: int, compress: bool = False, max_speedup: float = 1.0
) -> list[tuple[int, int]]:
    """(start, placed_length) of each piece: at its segment's start, or right after the previous
    piece when that one runs late. With `compress`, a piece longer than the room before the next
    segment's start (the source's end for the last one) is shortened by up to `max_speedup`."""
    placed = []
    cursor = 0
    for i, ((seg_start, _), length) in enumerate(zip(segments, lengths)):
        start = max(seg_start, cursor)
        room = (segments[i + 1][0] if i + 1 < len(segments) else total) - start
        if compress and length > room > 0:
            rate = min(max_speedup, length / room)
            length = math.ceil(length / rate)
        placed.append((start, length))
        cursor = start + length
    return placed


def time_compress(wav: torch.Tensor, new_length: int) -> torch.Tensor:
    """Change the duration of `wav` to `new_length` samples without changing its pitch."""
    import torchaudio.functional as AF

    if new_length == len(wav) or len(wav) < _N_FFT:
        return wav[:new_length] if new_length <= len(wav) else torch.nn.functional.pad(wav, (0, new_length - len(wav)))
    window = torch.hann_window(_N_FFT, dtype=torch.float32)
    spec = torch.stft(wav.float(), _N_FFT, _HOP, window=window, return_complex=True)
    advance = torch.linspace(0, math.pi * _HOP, spec.shape[0])[:, None]
    stretched = AF.phase_vocoder(spec, len(wav) / new_length, advance)
    return torch.istft(stretched, _N_FFT, _HOP, window=window, length=new_length)


class Stitcher(Node):
    """Regroups a flat batch of pieces by their layouts and places them on a silent track."""

    node_name = "stitcher"
    Config = StitcherConfig

    def __init__(self, cfg: Mapping | None = None, **overrides):
        super().__init__(cfg, **overrides)
        self._validate(self.cfg)

    @staticmethod
    def _validate(cfg) -> None:
        if cfg.max_speedup < 1.0:
            raise GraphError(f"stitcher: max_speedup must be >= 1, got {cfg.max_speedup}")

    @classmethod
    def port_types(cls, cfg):
        from dragoman.nodes import types as T

        cls._validate(cfg)
        inputs = {"audio": T.audio(cfg.sample_rate), "layout": T.segment_layout()}
        return inputs, {"audio": T.audio(cfg.sample_rate), "placement": T.segment_layout()}

    def stitch(self, pieces: Sequence[torch.Tensor], layout: SegmentLayout) -> tuple[torch.Tensor, SegmentLayout]:
        """One item: its pieces (in segment order) -> waveform and where each piece landed."""
        cfg = self.cfg
        plan = plan_placement(layout.segments, [len(p) for p in pieces], layout.length, cfg.compress, cfg.max_speedup)
        total = max([layout.length] + [start + length for start, length in plan])
        out = torch.zeros(total, dtype=torch.float32)
        for piece, (start, length) in zip(pieces, plan):
            if length != len(piece):
                piece = time_compress(piece, length)
            out[start : start + length] = piece
        placement = SegmentLayout(tuple((s, s + n) for s, n in plan), total, layout.sample_rate)
        return out, placement

    def run(self, audio, layout):
        # Not `check_inputs`: `audio` has one entry per segment and `layout` one per source item,
        # so the two batch sizes differ by design; the layouts say how many pieces belong to each.
        if audio is None or layout is None:
            raise DragomanError("stitcher: needs both input ports, 'audio' and 'layout'")
        layouts = [SegmentLayout.coerce(item) for item in layout]
        expected = sum(len(item.segments) for item in layouts)
        if len(audio) != expected:
            raise DragomanError(
                f"stitcher: got {len(audio)} audio pieces but the {len(layouts)} layout(s) describe {expected} segments"
            )
        outputs, placements, offset = [], [], 0
        for item in layouts:
            if item.sample_rate != self.cfg.sample_rate:
                raise DragomanError(f"stitcher: layout is at {item.sample_rate} Hz but the stitcher runs at {self.cfg.sample_rate} Hz")
            pieces = []
            for piece in audio[offset : offset + len(item.segments)]:
                piece = torch.as_tensor(piece).detach().to("cpu", torch.float32)
                if piece.dim() != 1:
                    piece = piece.squeeze()
                if piece.dim() > 1:
                    raise DragomanError(f"stitcher: audio pieces must be 1-D, got shape {tuple(piece.shape)}")
                pieces.append(piece.reshape(-1))
            offset += len(item.segments)
            wav, placed = self.stitch(pieces, item)
            outputs.append(wav)
            placements.append(placed)
        return {"audio": outputs, "placement": placements}
