"""Finite scalar quantisation (Mentzer et al. 2023, "FSQ: Finite Scalar Quantization: VQ-VAE Made Simple").

Each of d latent channels is bounded and rounded to one of L_i levels; the code index is the
mixed-radix number sum_i q_i * prod_{j<i} L_j with q_i in [0, L_i). No codebook to collapse, no
commitment loss: the straight-through estimator carries gradients through the rounding.

The bound is the one BiCodec uses for UniSS's global tokens (UNISS_RELEASE item 12):
`tanh(z + atanh(offset / h)) * h - offset` with `h = (L - 1) * (1 + eps) / 2` and offset 0.5
for even L, 0 for odd L — so with levels [4]*6 the indices match the released 4096-code tokens.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class FSQ(nn.Module):
    def __init__(self, levels: Sequence[int], eps: float = 1e-3):
        super().__init__()
        if not levels or any(int(level) < 2 for level in levels):
            raise ValueError(f"FSQ levels must be integers >= 2, got {list(levels)}")
        self.levels = [int(level) for level in levels]
        self.eps = eps
        levels_t = torch.tensor(self.levels, dtype=torch.float32)
        basis = torch.cumprod(torch.tensor([1] + self.levels[:-1], dtype=torch.long), dim=0)
        self.register_buffer("_levels", levels_t, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        half = (self._levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Round the bounded latent with a straight-through gradient; returns codes in [-1, 1]."""
        bounded = self.bound(z)
        rounded = bounded + (torch.round(bounded) - bounded).detach()
        return rounded / (self._levels // 2)

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        half = self._levels // 2
        digits = torch.round(codes * half + half).long()
        return (digits * self._basis).sum(dim=-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(f"FSQ indices must lie in [0, {self.codebook_size}), got {int(indices.min())}..{int(indices.max())}")
        digits = (indices.long().unsqueeze(-1) // self._basis) % self._levels.long()
        half = self._levels // 2
        return (digits.float() - half) / half

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [..., dim] -> (codes [..., dim], indices [...])."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"FSQ expects last dimension {self.dim}, got {z.shape[-1]}")
        codes = self.quantize(z)
        return codes, self.codes_to_indices(codes)


def codebook_usage(indices: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """Perplexity (exp of the entropy of code use) and the number of distinct codes used."""
    counts = torch.bincount(indices.reshape(-1).long(), minlength=codebook_size).float()
    probs = counts / counts.sum().clamp_min(1)
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return {"perplexity": float(entropy.exp()), "used_codes": int((counts > 0).sum()), "codebook_size": codebook_size}
