"""BiCodec's ConvNeXt feature encoder and its d-vector-conditioned feature decoder (the prenet).

Spark-TTS (arXiv 2503.01710, §3.1) builds both from Vocos backbones (Siuzdak 2023): a 7-tap
input convolution, a LayerNorm, ConvNeXt blocks (depthwise 7-tap convolution, LayerNorm,
pointwise MLP with GELU, per-channel layer scale, residual) and a final LayerNorm. The decoder's
main backbone normalises with an adaptive LayerNorm whose scale and shift are linear in the
speaker d-vector; that is where the 32 global tokens steer the voice before the wave generator.

Between backbone and projection sit resampling stages (`sample_ratios`, [1, 1] in the release):
each is a `SamplingBlock` (strided conv or transposed conv plus average-pool / repeat skips) and a
2-layer backbone. With ratio 1 a sampling block sums its three identical branches, i.e. triples
its input; the released weights were trained that way, so it is kept.

Attribute names equal the released tensor names (`encoder.encoder.convnext.0.dwconv.weight`,
`prenet.vocos_backbone.norm.scale.weight`, ...).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

# Spark-TTS hard-codes the backbone inside each resampling stage at two ConvNeXt blocks.
STAGE_LAYERS = 2


class AdaLayerNorm(nn.Module):
    """LayerNorm without own affine; scale and shift are linear functions of a condition vector."""

    def __init__(self, condition_dim: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.scale = nn.Linear(condition_dim, dim)
        self.shift = nn.Linear(condition_dim, dim)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """x [B, T, C], condition [B, D]."""
        x = F.layer_norm(x, (self.dim,), eps=self.eps)
        return x * self.scale(condition).unsqueeze(1) + self.shift(condition).unsqueeze(1)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int, condition_dim: Optional[int] = None):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = AdaLayerNorm(condition_dim, dim) if condition_dim else nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x [B, C, T] -> [B, C, T]."""
        y = self.dwconv(x).transpose(1, 2)
        y = self.norm(y, condition) if isinstance(self.norm, AdaLayerNorm) else self.norm(y)
        y = self.pwconv2(F.gelu(self.pwconv1(y)))
        return x + (self.gamma * y).transpose(1, 2)


class VocosBackbone(nn.Module):
    """[B, C_in, T] -> [B, T, dim] (channels last, as the projections that follow expect)."""

    def __init__(self, input_channels: int, dim: int, intermediate_dim: int, num_layers: int,
                 condition_dim: Optional[int] = None):
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.norm = AdaLayerNorm(condition_dim, dim) if condition_dim else nn.LayerNorm(dim, eps=1e-6)
        self.convnext = nn.ModuleList(ConvNeXtBlock(dim, intermediate_dim, condition_dim) for _ in range(num_layers))
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.embed(x).transpose(1, 2)
        x = self.norm(x, condition) if isinstance(self.norm, AdaLayerNorm) else self.norm(x)
        x = x.transpose(1, 2)
        for block in self.convnext:
            x = block(x, condition)
        return self.final_layer_norm(x.transpose(1, 2))


class SamplingBlock(nn.Module):
    """Resampling stage: [B, T, C] -> [B, C, T'] with T' = T * up / down.

    Up: repeat-interleave + (LeakyReLU, grouped transposed conv); down: (LeakyReLU, grouped
    strided conv) + average pools of both the merged and the repeated signal; the branches sum.
    """

    def __init__(self, dim: int, upsample_scale: int = 1, downsample_scale: int = 1):
        super().__init__()
        self.up, self.down = int(upsample_scale), int(downsample_scale)
        if self.up > 1:
            u = self.up
            self.de_conv_upsampler = nn.Sequential(
                nn.LeakyReLU(0.2),
                nn.ConvTranspose1d(dim, dim, kernel_size=2 * u, stride=u, padding=u // 2 + u % 2,
                                   output_padding=u % 2, groups=dim),
            )
        if self.down > 1:
            d = self.down
            self.conv_downsampler = nn.Sequential(
                nn.LeakyReLU(0.2),
                nn.Conv1d(dim, dim, kernel_size=2 * d, stride=d, padding=d // 2 + d % 2, groups=dim),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        repeated = x.repeat_interleave(self.up, dim=2) if self.up > 1 else x
        merged = repeated + self.de_conv_upsampler(x) if self.up > 1 else x
        if self.down > 1:
            pooled = lambda t: F.avg_pool1d(t, kernel_size=self.down, stride=self.down)  # noqa: E731
            return self.conv_downsampler(merged) + pooled(merged) + pooled(repeated)
        return merged + merged + repeated


def _stages(dim: int, intermediate_dim: int, ratios: Sequence[int], upsample: bool) -> nn.Sequential:
    return nn.Sequential(*(
        nn.Sequential(
            SamplingBlock(dim, upsample_scale=r if upsample else 1, downsample_scale=1 if upsample else r),
            VocosBackbone(dim, dim, intermediate_dim, STAGE_LAYERS),
        )
        for r in ratios
    ))


class FeatureEncoder(nn.Module):
    """BiCodec `encoder`: wav2vec2 features [B, C_in, T] -> latents [B, out_channels, T']."""

    def __init__(self, input_channels: int, vocos_dim: int, vocos_intermediate_dim: int, vocos_num_layers: int,
                 out_channels: int, sample_ratios: Sequence[int] = (1, 1)):
        super().__init__()
        self.encoder = VocosBackbone(input_channels, vocos_dim, vocos_intermediate_dim, vocos_num_layers)
        self.downsample = _stages(vocos_dim, vocos_intermediate_dim, sample_ratios, upsample=False)
        self.project = nn.Linear(vocos_dim, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.downsample(self.encoder(x))).transpose(1, 2)


class FeatureDecoder(nn.Module):
    """BiCodec `prenet`: quantised latents [B, C_in, T] + d-vector [B, D] -> [B, out_channels, T]."""

    def __init__(self, input_channels: int, vocos_dim: int, vocos_intermediate_dim: int, vocos_num_layers: int,
                 out_channels: int, condition_dim: Optional[int] = None, sample_ratios: Sequence[int] = (1, 1),
                 use_tanh_at_final: bool = False):
        super().__init__()
        self.linear_pre = nn.Linear(input_channels, vocos_dim)
        # "downsample" is the released name of these (up)sampling stages.
        self.downsample = _stages(vocos_dim, vocos_intermediate_dim, sample_ratios, upsample=True)
        self.vocos_backbone = VocosBackbone(vocos_dim, vocos_dim, vocos_intermediate_dim, vocos_num_layers, condition_dim)
        self.linear = nn.Linear(vocos_dim, out_channels)
        self.use_tanh_at_final = use_tanh_at_final

    def forward(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.downsample(self.linear_pre(x.transpose(1, 2))).transpose(1, 2)
        x = self.linear(self.vocos_backbone(x, condition)).transpose(1, 2)
        return torch.tanh(x) if self.use_tanh_at_final else x
