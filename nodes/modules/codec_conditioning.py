"""Global conditioning of the decoders: speaker + emotion tokens -> one vector, and the
FiLM-conditioned ConvNeXt block both decoder back ends are built from.

Speaker tokens are FSQ indices (UniSS: 32 tokens over levels 4^6). Like BiCodec
(UNISS_RELEASE item 12) the decoder turns them back into FSQ codes and flattens them
channel-major into one projection, so its d-vector is a function of the codes' geometry rather
than of 4096 x 32 separately learned rows: nearby codes give nearby voices, which is what lets
an unseen speaker's tokens decode to a plausible voice. Emotion tokens (the EmotionTokenizer's
FSQ indices) are embedded the same way and added; a learned vector stands in when none are given.

BiCodec adds its d-vector once, after the prenet. Here every block also receives it as FiLM
(scale and shift after the block's LayerNorm, initialised to identity), so a small network
cannot lose the voice over depth.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from dragoman.nodes.modules.fsq import FSQ


@dataclasses.dataclass
class ConditioningConfig:
    speaker_levels: list[int] = dataclasses.field(default_factory=lambda: [4, 4, 4, 4, 4, 4])
    num_speaker_tokens: int = 32
    emotion_levels: list[int] = dataclasses.field(default_factory=lambda: [8, 5, 5, 5])
    num_emotion_tokens: int = 4
    dim: int = 128


class GlobalConditioner(nn.Module):
    """speaker ids [B, S] (+ emotion ids [B, E] or None) -> conditioning vector [B, dim]."""

    def __init__(self, cfg: ConditioningConfig):
        super().__init__()
        self.cfg = cfg
        self.speaker_fsq = FSQ(cfg.speaker_levels)
        self.emotion_fsq = FSQ(cfg.emotion_levels)
        self.speaker_proj = nn.Sequential(
            nn.Linear(cfg.num_speaker_tokens * self.speaker_fsq.dim, cfg.dim), nn.GELU(), nn.Linear(cfg.dim, cfg.dim)
        )
        self.emotion_proj = nn.Sequential(
            nn.Linear(cfg.num_emotion_tokens * self.emotion_fsq.dim, cfg.dim), nn.GELU(), nn.Linear(cfg.dim, cfg.dim)
        )
        self.no_emotion = nn.Parameter(torch.zeros(cfg.dim))

    def check(self, speaker: torch.Tensor, emotion: torch.Tensor | None) -> None:
        """Raise ValueError with a one-line reason when the token ids cannot be these streams."""
        _check_ids("speaker tokens", speaker, self.cfg.num_speaker_tokens, self.speaker_fsq.codebook_size)
        if emotion is not None:
            _check_ids("emotion tokens", emotion, self.cfg.num_emotion_tokens, self.emotion_fsq.codebook_size)

    def forward(self, speaker: torch.Tensor, emotion: torch.Tensor | None = None,
                drop_emotion: torch.Tensor | None = None) -> torch.Tensor:
        """`drop_emotion` [B] bool (training): those items get the no-emotion vector, so one
        network serves callers with and without emotion tokens."""
        codes = self.speaker_fsq.indices_to_codes(speaker)  # [B, S, d]
        cond = self.speaker_proj(codes.transpose(1, 2).flatten(1))  # channel-major, as BiCodec
        if emotion is None:
            return cond + self.no_emotion
        emo = self.emotion_proj(self.emotion_fsq.indices_to_codes(emotion).flatten(1))
        if drop_emotion is not None:
            emo = torch.where(drop_emotion.unsqueeze(1), self.no_emotion.expand_as(emo), emo)
        return cond + emo


def _check_ids(name: str, ids: torch.Tensor, count: int, size: int) -> None:
    if ids.dim() != 2 or ids.shape[1] != count:
        raise ValueError(f"{name}: expected {count} per item, got shape {tuple(ids.shape)}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
        raise ValueError(f"{name}: ids must lie in [0, {size}), got {int(ids.min())}..{int(ids.max())}")


class CondConvNeXt(nn.Module):
    """ConvNeXt block (depthwise conv, LayerNorm, 4x MLP, layer scale) with FiLM from a global
    vector (none when cond_dim is 0); positions outside `mask` are zeroed so padding never
    reaches valid frames."""

    def __init__(self, dim: int, cond_dim: int, kernel_size: int = 7, mult: int = 4):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, elementwise_affine=cond_dim == 0)
        self.film = nn.Linear(cond_dim, 2 * dim) if cond_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.pw1 = nn.Linear(dim, mult * dim)
        self.pw2 = nn.Linear(mult * dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        """x [B, D, T], cond [B, C] (None without FiLM), mask [B, 1, T] float."""
        h = self.norm(self.dwconv(x).transpose(1, 2))
        if self.film is not None:
            gamma, beta = self.film(cond).unsqueeze(1).chunk(2, dim=-1)
            h = h * (1 + gamma) + beta
        h = self.pw2(nn.functional.gelu(self.pw1(h))) * self.scale
        return (x + h.transpose(1, 2)) * mask


def frame_mask(lengths: torch.Tensor, max_len: int, dtype=torch.float32) -> torch.Tensor:
    """[B, 1, max_len] 1.0 on valid positions."""
    return (torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]).unsqueeze(1).to(dtype)
