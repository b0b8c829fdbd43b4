"""AudioLoader: file paths -> mono float32 waveforms at the pipeline's rate (16 kHz).

Anything libsndfile reads (WAV of any bit depth, FLAC, OGG, MP3, AIFF ...), at any rate and
channel count, is averaged to mono and resampled with a windowed-sinc filter
(`dragoman.nodes.audio.io.read_audio`). Bad files end in a one-line AudioError naming the file.

Level normalisation is off by default because UniSS feeds the GLM-4 content tokenizer the raw
level (UNISS_RELEASE item 9); the nodes that want a normalised level (BiCodec's speaker side,
item 13) do it themselves. `peak` and `rms` are there for pipelines that need a fixed level.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import torch

from dragoman.nodes.audio.io import DEFAULT_MAX_SECONDS, SAMPLE_RATE, read_audio
from dragoman.nodes.base import Node
from dragoman.nodes.errors import GraphError

NORMALIZE_MODES = ("none", "peak", "rms")
# A signal whose peak is below this (about -100 dBFS, under 16-bit dither) has no level to set:
# scaling it up would only amplify quantisation noise.
_SILENT_PEAK = 1e-5


@dataclasses.dataclass
class AudioLoaderConfig:
    sample_rate: int = SAMPLE_RATE
    #: Longer files are refused before decoding (None: no limit).
    max_seconds: Optional[float] = DEFAULT_MAX_SECONDS
    #: "none" (UniSS), "peak" (scale the peak to `peak_level`) or "rms" (scale the RMS to
    #: `rms_dbfs`, never letting the peak exceed `peak_level`).
    normalize: str = "none"
    peak_level: float = 0.95
    rms_dbfs: float = -20.0


def normalize_level(wav: torch.Tensor, mode: str, peak_level: float = 0.95, rms_dbfs: float = -20.0) -> torch.Tensor:
    """Scale a waveform to a peak or RMS level; silent input is returned unchanged."""
    peak = float(wav.abs().max()) if wav.numel() else 0.0
    if mode == "none" or peak < _SILENT_PEAK:
        return wav
    if mode == "peak":
        return wav * (peak_level / peak)
    rms = float(wav.pow(2).mean().sqrt())
    gain = min(10.0 ** (rms_dbfs / 20.0) / rms, peak_level / peak)
    return wav * gain


class AudioLoader(Node):
    """Reads each path of the batch; outputs the waveform and its duration in seconds."""

    node_name = "audio_loader"
    Config = AudioLoaderConfig

    def __init__(self, cfg: Mapping | None = None, **overrides):
        super().__init__(cfg, **overrides)
        self._validate(self.cfg)

    @staticmethod
    def _validate(cfg) -> None:
        if cfg.normalize not in NORMALIZE_MODES:
            raise GraphError(f"audio_loader: normalize must be one of {NORMALIZE_MODES}, got {cfg.normalize!r}")
        if cfg.sample_rate <= 0 or (cfg.max_seconds is not None and cfg.max_seconds <= 0):
            raise GraphError(f"audio_loader: sample_rate and max_seconds must be > 0, got {cfg.sample_rate}, {cfg.max_seconds}")
        if not 0 < cfg.peak_level <= 1:
            raise GraphError(f"audio_loader: peak_level must be in (0, 1], got {cfg.peak_level}")

    @classmethod
    def port_types(cls, cfg):
        from dragoman.nodes import types as T

        cls._validate(cfg)
        return {"path": T.file_path()}, {"audio": T.audio(cfg.sample_rate), "duration": T.duration()}

    def load(self, path) -> torch.Tensor:
        cfg = self.cfg
        wav = read_audio(path, sample_rate=cfg.sample_rate, max_seconds=cfg.max_seconds)
        return normalize_level(wav.to(torch.float32), cfg.normalize, cfg.peak_level, cfg.rms_dbfs)

    def run(self, path):
        self.check_inputs({"path": path})
        audio = [self.load(p) for p in path]
        return {"audio": audio, "duration": [len(w) / self.cfg.sample_rate for w in audio]}
