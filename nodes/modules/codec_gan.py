"""Adversarial training parts of the wave generator: discriminators and losses.

HiFi-GAN's recipe (Kong et al. 2020) at a small width, as DAC and BiCodec use in spirit:
- multi-period discriminator: the waveform folded into [T / p, p] for p in 2, 3, 5, 7, 11 and
  read by 2-D convs along time, so each sees one phase of every period;
- multi-scale discriminator: 1-D grouped convs on the waveform at 1x, 2x and 4x average-pooled
  rates;
- least-squares GAN losses, feature matching (L1 between the discriminators' hidden maps of real
  and generated audio), and a multi-resolution log-mel L1 at three STFT sizes (the term that
  makes the generator converge; weight 45 as in HiFi-GAN).
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


@dataclasses.dataclass
class DiscriminatorConfig:
    periods: list[int] = dataclasses.field(default_factory=lambda: [2, 3, 5, 7, 11])
    period_channels: int = 32
    scales: int = 3
    scale_channels: int = 32


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, channels: int):
        super().__init__()
        self.period = period
        widths = [1, channels, 2 * channels, 4 * channels]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (5, 1), stride=(3, 1), padding=(2, 0))) for a, b in zip(widths[:-1], widths[1:])
        )
        self.post = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pad = (-wav.shape[-1]) % self.period
        x = nn.functional.pad(wav, (0, pad), mode="reflect" if pad < wav.shape[-1] else "constant")
        x = x.view(x.shape[0], 1, -1, self.period)
        feats = []
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x), 0.1)
            feats.append(x)
        return self.post(x).flatten(1), feats


class ScaleDiscriminator(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        c = channels
        specs = [(1, c, 15, 1, 1), (c, 2 * c, 41, 4, 4), (2 * c, 4 * c, 41, 4, 16), (4 * c, 4 * c, 5, 1, 1)]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(a, b, k, stride=s, groups=math.gcd(g, a, b), padding=k // 2)) for a, b, k, s, g in specs
        )
        self.post = weight_norm(nn.Conv1d(4 * c, 1, 3, padding=1))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = wav.unsqueeze(1)
        feats = []
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x), 0.1)
            feats.append(x)
        return self.post(x).flatten(1), feats


class MultiDiscriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.discriminators = nn.ModuleList(
            [PeriodDiscriminator(p, cfg.period_channels) for p in cfg.periods]
            + [ScaleDiscriminator(cfg.scale_channels) for _ in range(cfg.scales)]
        )
        self.n_periods = len(cfg.periods)

    def forward(self, wav: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """wav [B, N] -> one (logits, hidden maps) per discriminator."""
        out = []
        for i, disc in enumerate(self.discriminators):
            scale = i - self.n_periods
            x = nn.functional.avg_pool1d(wav.unsqueeze(1), 2**scale, ceil_mode=True)[:, 0] if scale > 0 else wav
            out.append(disc(x))
        return out


def discriminator_loss(real, fake) -> torch.Tensor:
    """Least squares: real logits towards 1, generated towards 0."""
    return sum(((1 - r) ** 2).mean() + (f**2).mean() for (r, _), (f, _) in zip(real, fake))


def generator_adversarial_loss(fake) -> torch.Tensor:
    return sum(((1 - f) ** 2).mean() for f, _ in fake)


def feature_matching_loss(real, fake) -> torch.Tensor:
    return sum((rf.detach() - ff).abs().mean() for (_, r), (_, f) in zip(real, fake) for rf, ff in zip(r, f))


class MultiResolutionMelLoss(nn.Module):
    """Mean L1 between log-mels at STFT sizes 256/512/1024 (hop a quarter, 20/40/80 bands)."""

    def __init__(self, sample_rate: int = 16000, sizes: tuple[int, ...] = (256, 512, 1024)):
        super().__init__()
        import torchaudio

        self.mels = nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n, hop_length=n // 4, n_mels=n * 10 // 128, power=1.0)
            for n in sizes
        )

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return sum((torch.log(m(fake) + 1e-5) - torch.log(m(real) + 1e-5)).abs().mean() for m in self.mels) / len(self.mels)
