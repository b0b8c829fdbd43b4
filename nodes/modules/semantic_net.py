"""SemanticNet: 50 Hz features -> FSQ semantic tokens, and the reconstruction head that trains them.

What is quantised, and why. UniSS's BiCodec quantises wav2vec2-XLSR features (self-supervised,
mostly phonetic) at 50 Hz. dragoman's stand-in for those features is the ContentTokenizer's
frozen Conformer encoder (trained with CTC, so it keeps what distinguishes words and throws away
much of the voice; per-utterance mel normalisation removes channel colour), repeated to 50 Hz,
beside three speaker-normalised prosody channels (`codec_features.prosody_tokens_features`:
z-scored log F0, voicing, z-scored energy). The tokens therefore carry what is said and how it
moves (pitch contour, emphasis, timing) but not the speaker's absolute pitch or timbre, which come
only from the global speaker tokens: that is what makes decoding in another voice work.

    content [B, C, T] -> LayerNorm over channels ┐
    prosody [B, 3, T] ────────────────────────────┴> 1x1 conv -> ConvNeXt x blocks -> Linear
        -> FSQ (levels) -> token ids [B, T]                                        (`encode`)
    codes -> Linear -> ConvNeXt x recon_blocks -> 1x1 conv -> (content, prosody) (`reconstruct`)

Training minimises the mean squared error of both reconstructions (each averaged over its own
channels, so three prosody channels weigh as much as the content vector). FSQ (Mentzer et al.
2023) needs no codebook loss and cannot collapse; UniSS's 8192-entry factorised VQ is replaced by
FSQ levels chosen in the config (the default and the measurement behind it: nodes/conf).
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from dragoman.nodes.modules.codec_conditioning import CondConvNeXt, frame_mask
from dragoman.nodes.modules.fsq import FSQ

PROSODY_DIM = 3


@dataclasses.dataclass
class SemanticNetConfig:
    content_dim: int = 144
    dim: int = 128
    blocks: int = 2
    recon_blocks: int = 2
    kernel_size: int = 5
    fsq_levels: list[int] = dataclasses.field(default_factory=lambda: [8, 5, 5, 5])


class SemanticNet(nn.Module):
    def __init__(self, cfg: SemanticNetConfig):
        super().__init__()
        self.cfg = cfg
        self.fsq = FSQ(cfg.fsq_levels)
        self.content_norm = nn.LayerNorm(cfg.content_dim, elementwise_affine=False)
        self.proj_in = nn.Conv1d(cfg.content_dim + PROSODY_DIM, cfg.dim, 1)
        self.blocks = nn.ModuleList(CondConvNeXt(cfg.dim, 0, cfg.kernel_size) for _ in range(cfg.blocks))
        self.to_latent = nn.Linear(cfg.dim, self.fsq.dim)
        self.from_codes = nn.Linear(self.fsq.dim, cfg.dim)
        self.recon_blocks = nn.ModuleList(CondConvNeXt(cfg.dim, 0, cfg.kernel_size) for _ in range(cfg.recon_blocks))
        self.proj_out = nn.Conv1d(cfg.dim, cfg.content_dim + PROSODY_DIM, 1)

    @property
    def codebook_size(self) -> int:
        return self.fsq.codebook_size

    def normalise(self, content: torch.Tensor, prosody: torch.Tensor) -> torch.Tensor:
        """[B, C, T] + [B, 3, T] -> the [B, C + 3, T] input (and reconstruction target)."""
        return torch.cat([self.content_norm(content.transpose(1, 2)).transpose(1, 2), prosody], dim=1)

    def encode(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """normalised features [B, C + 3, T] -> (codes [B, T, fsq_dim], ids [B, T])."""
        mask = frame_mask(lengths, features.shape[-1], features.dtype)
        x = self.proj_in(features * mask) * mask
        for block in self.blocks:
            x = block(x, None, mask)
        return self.fsq(self.to_latent(x.transpose(1, 2)))

    def reconstruct(self, codes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """codes [B, T, fsq_dim] -> reconstructed normalised features [B, C + 3, T]."""
        mask = frame_mask(lengths, codes.shape[1], codes.dtype)
        x = self.from_codes(codes).transpose(1, 2) * mask
        for block in self.recon_blocks:
            x = block(x, None, mask)
        return self.proj_out(x) * mask

    def loss(self, features: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        codes, ids = self.encode(features, lengths)
        recon = self.reconstruct(codes, lengths)
        mask = frame_mask(lengths, features.shape[-1], features.dtype)
        err = (recon - features) ** 2 * mask
        frames = mask.sum()
        content = err[:, : self.cfg.content_dim].sum() / (frames * self.cfg.content_dim)
        prosody = err[:, self.cfg.content_dim :].sum() / (frames * PROSODY_DIM)
        return {"loss": content + prosody, "content": content, "prosody": prosody, "ids": ids}
