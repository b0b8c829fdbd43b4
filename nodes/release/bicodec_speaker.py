"""BiCodec's global (speaker) tokenizer: reference audio -> 32 tokens of 4096 codes -> d-vector.

Spark-TTS (arXiv 2503.01710, §3.1): a mel spectrogram of a fixed-length reference clip goes
through an ECAPA-TDNN (Desplanques et al. 2020, arXiv 2005.07143: SE-Res2Net blocks with
dilations 2, 3, 4, multi-layer feature aggregation into a 1536-channel context, attentive
statistics pooling with global context), whose frame-level context a Perceiver resampler turns
into 32 latent vectors; finite scalar quantisation (levels [4]*6 = 4096 codes) makes them tokens.
From tokens, the quantised codes are projected back and flattened channel-major into a linear
layer that gives the d-vector the decoder is conditioned on (UNISS_RELEASE items 10, 12, 13).

Input side (item 13): volume normalisation (coefficient 0.2, gain clipped to 0.1-10), then the
first 96,000 samples (6 s at 16 kHz, a multiple of the 320-sample hop), shorter audio tiled.

The release hard-codes the ECAPA and Perceiver widths (item 10); `SpeakerWidths` makes them
parameters with the released values as defaults, so tests can shrink them. Attribute names equal
the released tensor names (`speaker_encoder.speaker_encoder.layer2.se_res2block.1.convs.0.weight`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from dragoman.nodes.modules.fsq import FSQ


@dataclasses.dataclass
class SpeakerWidths:
    channels: int = 512           # ECAPA-TDNN channels
    context_dim: int = 1536       # concatenated multi-layer context (3 x 512)
    res2_scale: int = 8
    se_bottleneck: int = 128
    pool_bottleneck: int = 128    # attentive statistics pooling
    perceiver_heads: int = 8
    perceiver_dim_head: int = 64
    perceiver_depth: int = 2
    perceiver_ff_mult: int = 4


# -- input side ------------------------------------------------------------------------------
def volume_normalize(wav: torch.Tensor, coeff: float = 0.2) -> torch.Tensor:
    """Spark-TTS's loudness normalisation, in float64 as its numpy original.

    Quiet audio (peak < 0.1) is first scaled to peak 0.1; the level is then the mean of the
    90th-99th percentile of the magnitudes above 0.01 *as measured before that first scaling*
    (the released code does not re-sort), the gain coeff / level is clipped to [0.1, 10], and
    the result is scaled down if it would clip. Fewer than 11 magnitudes above 0.01: no gain.
    """
    audio = wav.to(torch.float64)
    mags = audio.abs().sort().values
    if mags[-1] < 0.1:
        audio = audio / max(float(mags[-1]), 1e-3) * 0.1
    loud = mags[mags > 0.01]
    n = loud.shape[0]
    if n <= 10:
        return audio
    level = float(loud[int(0.9 * n): int(0.99 * n)].mean())
    audio = audio * min(max(coeff / level, 0.1), 10.0)
    peak = float(audio.abs().max())
    return audio / peak if peak > 1 else audio


def reference_clip(wav: torch.Tensor, length: int) -> torch.Tensor:
    """The first `length` samples; shorter audio is tiled first (numpy's `np.tile`)."""
    if wav.shape[-1] < length:
        wav = wav.repeat(length // wav.shape[-1] + 1)
    return wav[:length]


def reference_length(sample_rate: int, seconds: float, hop: int) -> int:
    return int(sample_rate * seconds) // hop * hop


# -- ECAPA-TDNN ------------------------------------------------------------------------------
class Conv1dReluBn(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel_size, padding=padding, dilation=dilation)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class Res2Conv1dReluBn(nn.Module):
    """Res2Net: channels split into `scale` groups; group i (i < scale-1) is convolved after adding
    the previous group's output; the last group passes through."""

    def __init__(self, channels: int, kernel_size: int, padding: int, dilation: int, scale: int):
        super().__init__()
        if channels % scale:
            raise ValueError(f"Res2 channels {channels} not divisible by scale {scale}")
        self.width = channels // scale
        count = scale - 1 if scale > 1 else 1
        self.convs = nn.ModuleList(nn.Conv1d(self.width, self.width, kernel_size, padding=padding, dilation=dilation)
                                   for _ in range(count))
        self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(count))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(x, self.width, dim=1)
        out, carry = [], None
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            carry = pieces[i] if carry is None else carry + pieces[i]
            carry = bn(F.relu(conv(carry)))
            out.append(carry)
        out.extend(pieces[len(self.convs):])
        return torch.cat(out, dim=1)


class SEConnect(nn.Module):
    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.linear1 = nn.Linear(channels, bottleneck)
        self.linear2 = nn.Linear(bottleneck, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))
        return x * gate.unsqueeze(2)


class SERes2Block(nn.Module):
    def __init__(self, channels: int, dilation: int, scale: int, se_bottleneck: int):
        super().__init__()
        self.se_res2block = nn.Sequential(
            Conv1dReluBn(channels, channels),
            Res2Conv1dReluBn(channels, 3, padding=dilation, dilation=dilation, scale=scale),
            Conv1dReluBn(channels, channels),
            SEConnect(channels, se_bottleneck),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.se_res2block(x)


class AttentiveStatsPool(nn.Module):
    """Channel-wise attention over frames, conditioned on the utterance mean and std (global
    context); returns the attention-weighted mean and std."""

    def __init__(self, dim: int, bottleneck: int):
        super().__init__()
        self.linear1 = nn.Conv1d(dim * 3, bottleneck, kernel_size=1)
        self.linear2 = nn.Conv1d(bottleneck, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True).expand_as(x)
        std = torch.sqrt(x.var(dim=-1, keepdim=True) + 1e-7).expand_as(x)
        alpha = torch.softmax(self.linear2(torch.tanh(self.linear1(torch.cat([x, mean, std], dim=1)))), dim=2)
        mu = (alpha * x).sum(dim=2)
        sigma = torch.sqrt(((alpha * x * x).sum(dim=2) - mu * mu).clamp(min=1e-7))
        return torch.cat([mu, sigma], dim=1)


class EcapaTdnn(nn.Module):
    def __init__(self, feat_dim: int, embed_dim: int, w: SpeakerWidths):
        super().__init__()
        self.layer1 = Conv1dReluBn(feat_dim, w.channels, kernel_size=5, padding=2)
        self.layer2 = SERes2Block(w.channels, 2, w.res2_scale, w.se_bottleneck)
        self.layer3 = SERes2Block(w.channels, 3, w.res2_scale, w.se_bottleneck)
        self.layer4 = SERes2Block(w.channels, 4, w.res2_scale, w.se_bottleneck)
        self.conv = nn.Conv1d(w.channels * 3, w.context_dim, kernel_size=1)
        self.pool = AttentiveStatsPool(w.context_dim, w.pool_bottleneck)
        self.bn = nn.BatchNorm1d(w.context_dim * 2)
        self.linear = nn.Linear(w.context_dim * 2, embed_dim)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mel [B, F, T] -> (x-vector [B, embed_dim], frame context [B, context_dim, T])."""
        h1 = self.layer1(mel)
        h2 = self.layer2(h1)
        h3 = self.layer3(h2)
        h4 = self.layer4(h3)
        context = F.relu(self.conv(torch.cat([h2, h3, h4], dim=1)))
        return self.linear(self.bn(self.pool(context))), context


# -- Perceiver resampler ---------------------------------------------------------------------
class LatentAttention(nn.Module):
    """Latents attend to [latents; context] (keys include the queries), no biases."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_kv = nn.Linear(dim, 2 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim, bias=False)

    def forward(self, latents: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        split = lambda t: t.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # noqa: E731
        q = split(self.to_q(latents))
        k, v = (split(t) for t in self.to_kv(torch.cat([latents, context], dim=1)).chunk(2, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).flatten(2))


class GEGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * x


def feed_forward(dim: int, mult: int) -> nn.Sequential:
    inner = int(dim * mult * 2 / 3)  # GEGLU keeps the parameter count of a mult x MLP
    return nn.Sequential(nn.Linear(dim, inner * 2), GEGLU(), nn.Linear(inner, dim))


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.gamma


class PerceiverResampler(nn.Module):
    def __init__(self, dim: int, context_dim: int, num_latents: int, w: SpeakerWidths):
        super().__init__()
        self.proj_context = nn.Linear(context_dim, dim)
        self.latents = nn.Parameter(torch.randn(num_latents, dim) * 0.02)
        self.layers = nn.ModuleList(
            nn.ModuleList([LatentAttention(dim, w.perceiver_heads, w.perceiver_dim_head), feed_forward(dim, w.perceiver_ff_mult)])
            for _ in range(w.perceiver_depth)
        )
        self.norm = RMSNorm(dim)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """context [B, T, context_dim] -> latents [B, num_latents, dim]."""
        context = self.proj_context(context)
        latents = self.latents.unsqueeze(0).expand(context.shape[0], -1, -1)
        for attention, ff in self.layers:
            latents = attention(latents, context) + latents
            latents = ff(latents) + latents
        return self.norm(latents)


# -- tokens <-> d-vector ---------------------------------------------------------------------
class GlobalQuantizer(nn.Module):
    """ResidualFSQ with one quantizer: Linear(latent -> 6), FSQ, Linear(6 -> latent). Computed
    in fp32 whatever the network's dtype: the rounding decides the token. FSQ has no weights; it
    is built per call, so a network constructed on the meta device has nothing left to fill."""

    def __init__(self, latent_dim: int, levels: Sequence[int]):
        super().__init__()
        self.levels = [int(level) for level in levels]
        self.project_in = nn.Linear(latent_dim, len(self.levels))
        self.project_out = nn.Linear(len(self.levels), latent_dim)

    def fsq(self, device: torch.device) -> FSQ:
        return FSQ(self.levels).to(device)

    def tokenize(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, N, latent] -> ids [B, N]."""
        z = F.linear(latents.float(), self.project_in.weight.float(), self.project_in.bias.float())
        return self.fsq(z.device)(z)[1]

    def codes(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, N] -> projected codes [B, N, latent] (fp32)."""
        c = self.fsq(ids.device).indices_to_codes(ids)
        return F.linear(c, self.project_out.weight.float(), self.project_out.bias.float())


class GlobalTokenDecoder(nn.Module):
    """The part of the speaker encoder the decoder needs: 32 tokens -> d-vector."""

    def __init__(self, latent_dim: int, token_num: int, out_dim: int, levels: Sequence[int]):
        super().__init__()
        self.token_num = token_num
        self.quantizer = GlobalQuantizer(latent_dim, levels)
        self.project = nn.Linear(latent_dim * token_num, out_dim)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.quantizer.levels)

    def check_ids(self, ids: torch.Tensor) -> None:
        """ValueError unless `ids` is one item's row of global tokens this codec can decode."""
        if ids.dim() != 1 or ids.shape[0] != self.token_num:
            raise ValueError(f"expected {self.token_num} speaker tokens per item, got shape {tuple(ids.shape)}")
        if int(ids.min()) < 0 or int(ids.max()) >= self.codebook_size:
            raise ValueError(f"speaker token ids must lie in [0, {self.codebook_size}), got {int(ids.min())}..{int(ids.max())}")

    def dvector(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, token_num] -> d-vector [B, out_dim]: codes [B, N, latent] are transposed to
        [B, latent, N] and flattened channel-major (item 12)."""
        codes = self.quantizer.codes(ids).transpose(1, 2).flatten(1)
        return self.project(codes.to(self.project.weight.dtype))


class BiCodecSpeakerEncoder(GlobalTokenDecoder):
    """mel [B, F, T] -> (token ids [B, 32], x-vector [B, out_dim])."""

    def __init__(self, input_dim: int, out_dim: int, latent_dim: int, token_num: int, fsq_levels: Sequence[int],
                 widths: SpeakerWidths | None = None):
        super().__init__(latent_dim, token_num, out_dim, fsq_levels)
        w = widths or SpeakerWidths()
        self.speaker_encoder = EcapaTdnn(input_dim, out_dim, w)
        self.perceiver_sampler = PerceiverResampler(latent_dim, w.context_dim, token_num, w)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_vector, context = self.speaker_encoder(mel)
        latents = self.perceiver_sampler(context.transpose(1, 2))
        return self.quantizer.tokenize(latents), x_vector


def mel_frontend(sample_rate: int, n_fft: int, win_length: int, hop_length: int, mel_fmin: float,
                 mel_fmax: float | None, num_mels: int) -> nn.Module:
    """The reference mel: magnitude (power 1), slaney filters and norm, centred, no log."""
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, win_length=win_length, hop_length=hop_length, f_min=mel_fmin,
        f_max=mel_fmax, n_mels=num_mels, power=1.0, norm="slaney", mel_scale="slaney", center=True,
    )

