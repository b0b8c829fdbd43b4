"""SpeakerNet: reference clip -> speaker embedding, 32 global FSQ tokens, and a d-vector from tokens.

The shape of BiCodec's speaker path in UniSS (UNISS_RELEASE items 10-13), shrunk to train on a
CPU: an ECAPA-TDNN (Desplanques et al. 2020) -> attentive statistics pooling -> embedding, and a
perceiver whose 32 learned latents cross-attend to the frame features -> FSQ with levels
[4]*6 = 4096 codes per token. The d-vector is rebuilt from the tokens alone (codes [B, 32, 6]
transposed and flattened channel-major into one Linear, as BiCodec's `speaker_encoder.project`),
because the decoder receives nothing else.

Every input is first cut or tiled to `ref_seconds` (UniSS: the first 6 s, shorter audio tiled),
so all items in a batch have the same length and a batch needs no padding at all: batched and
one-by-one results agree exactly. Log-mels are mean-normalised per clip (CMN), which makes the
embedding independent of the recording gain.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

from dragoman.nodes.modules.features import LogMel, play_faster
from dragoman.nodes.modules.fsq import FSQ


@dataclasses.dataclass
class SpeakerNetConfig:
    n_mels: int = 80
    channels: int = 192
    dilations: list[int] = dataclasses.field(default_factory=lambda: [2, 3, 4])
    res2_scale: int = 4
    se_bottleneck: int = 64
    pooled_channels: int = 384  # multi-layer feature aggregation width (ECAPA: 1536)
    attention_hidden: int = 64
    embedding_dim: int = 192
    num_tokens: int = 32
    latent_dim: int = 96
    perceiver_heads: int = 4
    perceiver_layers: int = 2
    fsq_levels: list[int] = dataclasses.field(default_factory=lambda: [4, 4, 4, 4, 4, 4])
    ref_seconds: float = 6.0


def cut_or_tile(wav: torch.Tensor, samples: int, start: int = 0) -> torch.Tensor:
    """wav [T] -> [samples]: from `start`, cut when longer, repeated end to end when shorter
    (UniSS tiles its 6 s speaker reference with np.tile)."""
    wav = wav[start:] if start < wav.shape[0] else wav
    reps = -(-samples // wav.shape[0])
    return wav.repeat(reps)[:samples]


class SERes2Block(nn.Module):
    """1x1 conv -> Res2 dilated convs (hierarchical channel groups) -> 1x1 conv -> squeeze-excite,
    with a residual connection (ECAPA-TDNN's SE-Res2Block)."""

    def __init__(self, channels: int, dilation: int, scale: int, se_bottleneck: int):
        super().__init__()
        if channels % scale:
            raise ValueError(f"channels {channels} must divide by res2_scale {scale}")
        width = channels // scale
        self.scale = scale
        self.pre = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.ReLU(), nn.BatchNorm1d(channels))
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv1d(width, width, 3, dilation=dilation, padding=dilation), nn.ReLU(), nn.BatchNorm1d(width))
            for _ in range(scale - 1)
        )
        self.post = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.ReLU(), nn.BatchNorm1d(channels))
        self.se = nn.Sequential(nn.Conv1d(channels, se_bottleneck, 1), nn.ReLU(), nn.Conv1d(se_bottleneck, channels, 1),
                                nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.pre(x).chunk(self.scale, dim=1)
        outs, carry = [parts[0]], None
        for part, conv in zip(parts[1:], self.convs):
            carry = conv(part if carry is None else part + carry)
            outs.append(carry)
        y = self.post(torch.cat(outs, dim=1))
        return x + y * self.se(y.mean(dim=-1, keepdim=True))


class AttentiveStatsPool(nn.Module):
    """Attention weights per frame and channel (conditioned on the clip's global mean and std),
    then the weighted mean and standard deviation."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.attention = nn.Sequential(nn.Conv1d(3 * channels, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = x.mean(-1, keepdim=True), x.std(-1, keepdim=True).clamp_min(1e-4)
        context = torch.cat([x, mean.expand_as(x), std.expand_as(x)], dim=1)
        w = self.attention(context).softmax(dim=-1)
        mu = (w * x).sum(-1)
        sigma = ((w * x * x).sum(-1) - mu * mu).clamp_min(1e-6).sqrt()
        return torch.cat([mu, sigma], dim=-1)


class PerceiverLayer(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.cross = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, latents: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(frames)
        latents = latents + self.cross(self.norm_q(latents), kv, kv, need_weights=False)[0]
        return latents + self.ff(latents)


class SpeakerNet(nn.Module):
    def __init__(self, cfg: SpeakerNetConfig):
        super().__init__()
        self.cfg = cfg
        self.frontend = LogMel(n_mels=cfg.n_mels)
        c = cfg.channels
        self.stem = nn.Sequential(nn.Conv1d(cfg.n_mels, c, 5, padding=2), nn.ReLU(), nn.BatchNorm1d(c))
        self.blocks = nn.ModuleList(SERes2Block(c, d, cfg.res2_scale, cfg.se_bottleneck) for d in cfg.dilations)
        self.aggregate = nn.Sequential(nn.Conv1d(c * len(cfg.dilations), cfg.pooled_channels, 1), nn.ReLU())
        self.pool = AttentiveStatsPool(cfg.pooled_channels, cfg.attention_hidden)
        self.pool_norm = nn.BatchNorm1d(2 * cfg.pooled_channels)
        self.embed = nn.Linear(2 * cfg.pooled_channels, cfg.embedding_dim)
        self.latents = nn.Parameter(torch.randn(cfg.num_tokens, cfg.latent_dim) * 0.02)
        self.frames_in = nn.Linear(cfg.pooled_channels, cfg.latent_dim)
        self.perceiver = nn.ModuleList(PerceiverLayer(cfg.latent_dim, cfg.perceiver_heads) for _ in range(cfg.perceiver_layers))
        self.fsq = FSQ(cfg.fsq_levels)
        self.to_fsq = nn.Linear(cfg.latent_dim, self.fsq.dim)
        self.project = nn.Linear(self.fsq.dim * cfg.num_tokens, cfg.embedding_dim)

    @property
    def ref_samples(self) -> int:
        return int(round(self.cfg.ref_seconds * self.frontend.mel.sample_rate))

    def reference(self, wavs: list[torch.Tensor], samples: int | None = None) -> torch.Tensor:
        """Equal-length reference clips [B, samples] (the first `ref_seconds`, tiled if shorter)."""
        n = samples or self.ref_samples
        return torch.stack([cut_or_tile(w, n) for w in wavs])

    def frame_features(self, clips: torch.Tensor) -> torch.Tensor:
        """clips [B, T] -> [B, pooled_channels, F]."""
        lengths = torch.full((clips.shape[0],), clips.shape[1], dtype=torch.long, device=clips.device)
        feats, _ = self.frontend(clips, lengths)
        x = self.stem(feats - feats.mean(dim=-1, keepdim=True))
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return self.aggregate(torch.cat(outs, dim=1))

    def encode(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """clips [B, T] (equal lengths) -> embedding [B, E], codes [B, N, 6], ids [B, N], dvector [B, E]."""
        frames = self.frame_features(clips)
        embedding = self.embed(self.pool_norm(self.pool(frames)))
        latents = self.latents.expand(clips.shape[0], -1, -1)
        kv = self.frames_in(frames.transpose(1, 2))
        for layer in self.perceiver:
            latents = layer(latents, kv)
        codes, ids = self.fsq(self.to_fsq(latents))
        return {"embedding": embedding, "codes": codes, "ids": ids, "dvector": self.codes_to_dvector(codes)}

    def codes_to_dvector(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, N, fsq_dim] -> [B, E], flattened channel-major like BiCodec's project."""
        return self.project(codes.transpose(1, 2).flatten(1))

    def tokens_to_dvector(self, ids: torch.Tensor) -> torch.Tensor:
        """token ids [B, N] -> d-vector [B, E] (what the decoder computes from the prompt)."""
        if ids.dim() != 2 or ids.shape[1] != self.cfg.num_tokens:
            raise ValueError(f"expected speaker token ids of shape [B, {self.cfg.num_tokens}], got {tuple(ids.shape)}")
        return self.codes_to_dvector(self.fsq.indices_to_codes(ids))

    def forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.encode(clips)


def speed_perturb(clips: torch.Tensor, factor: float, sample_rate: int = 16000) -> torch.Tensor:
    """Play clips [B, T] `factor` times faster (pitch and formants scale with it), keeping the length
    by cutting or tiling: a classic way to make new training speakers (Ko et al. 2015)."""
    if factor == 1.0:
        return clips
    return torch.stack([cut_or_tile(x, clips.shape[1]) for x in play_faster(clips, factor, sample_rate)])


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1.0 - F.cosine_similarity(a, b, dim=-1).mean()
