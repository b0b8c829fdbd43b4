"""WaveGeneratorNet: the scalable BiCodec-style back end (UniSS's decoder, DESIGN §1).

Semantic tokens -> embedding -> conditioned ConvNeXt prenet at 50 Hz, plus the global vector
added once after it (BiCodec's `x + d_vector`, UNISS_RELEASE item 13) -> DAC-style wave generator:
a 7-tap input conv, then per upsampling rate r in [8, 5, 4, 2] (8*5*4*2 = 320 samples per token)
Snake -> weight-normed transposed conv (kernel 2r, stride r, padding ceil(r/2), output padding
r mod 2, which gives exactly L*r samples) halving the channels -> three residual units with
dilations 1, 3, 9 (Snake, 7-tap dilated conv, Snake, 1x1 conv) -> Snake -> 7-tap conv -> tanh.

Snake is `dragoman.kernels.snake.snake` (Triton on GPU inference, torch elsewhere). Padding is
zeroed after every stage at that stage's rate, so a batch gives each item its unbatched output.
Trained adversarially with `dragoman.nodes.modules.codec_gan`. UniSS's generator starts at
1536 channels; the default here is 256 (a CPU-sized default; the width is one config value).
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from dragoman.kernels.snake import snake
from dragoman.nodes.modules.codec_conditioning import CondConvNeXt, ConditioningConfig, GlobalConditioner, frame_mask


@dataclasses.dataclass
class WaveGeneratorConfig:
    codebook_size: int = 1000
    dim: int = 128
    prenet_blocks: int = 4
    kernel_size: int = 7
    channels: int = 256
    rates: list[int] = dataclasses.field(default_factory=lambda: [8, 5, 4, 2])
    conditioning: ConditioningConfig = dataclasses.field(default_factory=ConditioningConfig)


class Snake(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return snake(x, self.alpha)


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            Snake(channels),
            weight_norm(nn.Conv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation)),
            Snake(channels),
            weight_norm(nn.Conv1d(channels, channels, 1)),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (x + self.block(x)) * mask


class UpsampleStage(nn.Module):
    def __init__(self, c_in: int, c_out: int, rate: int):
        super().__init__()
        self.rate = rate
        self.act = Snake(c_in)
        self.up = weight_norm(nn.ConvTranspose1d(c_in, c_out, 2 * rate, stride=rate,
                                                 padding=math.ceil(rate / 2), output_padding=rate % 2))
        self.units = nn.ModuleList(ResidualUnit(c_out, d) for d in (1, 3, 9))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = lengths * self.rate
        x = self.up(self.act(x))
        mask = frame_mask(lengths, x.shape[-1], x.dtype)
        x = x * mask
        for unit in self.units:
            x = unit(x, mask)
        return x, lengths


class WaveGeneratorNet(nn.Module):
    def __init__(self, cfg: WaveGeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.hop = math.prod(cfg.rates)
        cond = cfg.conditioning.dim
        self.conditioner = GlobalConditioner(cfg.conditioning)
        self.embed = nn.Embedding(cfg.codebook_size, cfg.dim)
        self.prenet = nn.ModuleList(CondConvNeXt(cfg.dim, cond, cfg.kernel_size) for _ in range(cfg.prenet_blocks))
        self.d_vector = nn.Linear(cond, cfg.dim)
        self.conv_in = weight_norm(nn.Conv1d(cfg.dim, cfg.channels, 7, padding=3))
        stages, width = [], cfg.channels
        for rate in cfg.rates:
            stages.append(UpsampleStage(width, max(width // 2, 8), rate))
            width = max(width // 2, 8)
        self.stages = nn.ModuleList(stages)
        self.act_out = Snake(width)
        self.conv_out = weight_norm(nn.Conv1d(width, 1, 7, padding=3))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, speaker: torch.Tensor,
                emotion: torch.Tensor | None = None, drop_emotion: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [B, T], lengths [B] -> (waveform [B, T * hop], sample lengths [B])."""
        cond = self.conditioner(speaker, emotion, drop_emotion)
        mask = frame_mask(lengths, tokens.shape[1])
        x = self.embed(tokens).transpose(1, 2) * mask
        for block in self.prenet:
            x = block(x, cond, mask)
        x = (x + self.d_vector(cond).unsqueeze(-1)) * mask
        x = self.conv_in(x) * mask
        for stage in self.stages:
            x, lengths = stage(x, lengths)
        wav = torch.tanh(self.conv_out(self.act_out(x)))[:, 0]
        return wav * frame_mask(lengths, wav.shape[-1], wav.dtype)[:, 0], lengths
