"""Checks of the waveforms handed to the front nodes (speaker, content, emotion tokenizers).

A node called on tensors has no file name to blame, so the message names the node and the item
index. What is refused and why:
- not a 1-D float tensor: a stereo [2, T] tensor would be read as a batch of two;
- a sample rate other than the node's (when the caller states one): the nodes' mel front ends
  assume 16 kHz, and a wrong rate gives confident nonsense, not an error;
- NaN/Inf samples; fewer than `min_samples` samples;
- silence (peak below `SILENCE_PEAK`) for nodes that describe a voice: there is no speaker or
  emotion in silence. Tokenizers of content accept it (a VAD segment may be near-silent) and
  return tokens with an empty transcript.
"""
from __future__ import annotations

from typing import Sequence

import torch

from dragoman.nodes.errors import AudioError

# -60 dBFS: below what any TTS voice or microphone recording of speech peaks at.
SILENCE_PEAK = 1e-3


def check_waveforms(wavs: Sequence[torch.Tensor], node: str, *, expected_rate: int, sample_rate: int | None = None,
                    min_samples: int = 1, allow_silent: bool = True) -> list[torch.Tensor]:
    """Validate and return the waveforms as float32 1-D tensors, or raise a one-line AudioError."""
    if sample_rate is not None and int(sample_rate) != int(expected_rate):
        raise AudioError(f"{node}: expects {expected_rate} Hz audio, got {sample_rate} Hz "
                         f"(resample with dragoman.nodes.audio.io.resample)")
    if len(wavs) == 0:
        raise AudioError(f"{node}: empty batch (no waveforms)")
    out = []
    for i, wav in enumerate(wavs):
        if not isinstance(wav, torch.Tensor):
            raise AudioError(f"{node}: item {i} is a {type(wav).__name__}, not a torch tensor")
        if wav.dim() != 1:
            raise AudioError(f"{node}: item {i} has shape {tuple(wav.shape)}; expected a mono 1-D waveform")
        if wav.shape[0] < min_samples:
            raise AudioError(f"{node}: item {i} is too short ({wav.shape[0]} samples = "
                             f"{wav.shape[0] / expected_rate:.3f} s; needs at least {min_samples / expected_rate:.3f} s)")
        wav = wav.to(torch.float32)
        if not torch.isfinite(wav).all():
            raise AudioError(f"{node}: item {i} contains NaN or Inf samples")
        if not allow_silent and float(wav.abs().max()) < SILENCE_PEAK:
            raise AudioError(f"{node}: item {i} is silent (peak below {SILENCE_PEAK:g}); there is no voice to describe")
        out.append(wav)
    return out
