"""Log-mel front end with frame lengths, masks and speed perturbation, shared by the tokenizer networks."""
from __future__ import annotations

import torch
from torch import nn


class LogMel(nn.Module):
    """16 kHz waveform [B, T] + lengths -> log-mel [B, n_mels, F] + frame lengths.

    25 ms windows every 10 ms (the usual ASR front end); not centred, so frame i covers samples
    [i*hop, i*hop + win) and padding beyond an item's length never reaches its valid frames.
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 80, win_ms: float = 25.0, hop_ms: float = 10.0):
        super().__init__()
        import torchaudio

        self.win = int(sample_rate * win_ms / 1000)
        self.hop = int(sample_rate * hop_ms / 1000)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=self.win, win_length=self.win, hop_length=self.hop,
            n_mels=n_mels, center=False, power=2.0,
        )

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.clamp((lengths - self.win) // self.hop + 1, min=1)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if wav.shape[-1] < self.win:
            wav = nn.functional.pad(wav, (0, self.win - wav.shape[-1]))
        feats = torch.log(self.mel(wav) + 1e-6)
        frames = self.frame_lengths(lengths).clamp(max=feats.shape[-1])
        return feats, frames


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, max_len] bool, True on valid positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def play_faster(wav: torch.Tensor, factor: float, sample_rate: int = 16000) -> torch.Tensor:
    """Waveforms [..., T] played `factor` times faster (tempo, pitch and formants scale together;
    Ko et al. 2015): resampled to sample_rate / factor, so about T / factor samples long."""
    if factor == 1.0:
        return wav
    import torchaudio.functional as AF

    return AF.resample(wav, int(round(sample_rate * factor)), sample_rate)
