"""Additive angular margin softmax (ArcFace, Deng et al. 2019), the usual speaker-embedding loss.

Logits are scaled cosines between L2-normalised embeddings and class centres, with a margin m
added to the angle of the true class: cos(theta_y + m). Training against the margin packs one
speaker's utterances into a tight cone, so cosine similarity is the verification score
(ECAPA-TDNN trains with m = 0.2, s = 30).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class AdditiveAngularMargin(nn.Module):
    def __init__(self, dim: int, num_classes: int, margin: float = 0.2, scale: float = 30.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, dim) / math.sqrt(dim))
        self.margin, self.scale = margin, scale

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(embeddings, dim=-1), F.normalize(self.weight, dim=-1))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (margin loss, accuracy of the plain cosine classifier)."""
        cos = self.cosines(embeddings).clamp(-1 + 1e-7, 1 - 1e-7)
        target = torch.cos(torch.acos(cos.gather(1, labels[:, None])) + self.margin)
        # Past theta = pi - m the margin would turn the angle back towards the centre; use the
        # monotone continuation cos(theta) - m * sin(m) there (ArcFace's "easy margin" fix).
        fallback = cos.gather(1, labels[:, None]) - self.margin * math.sin(self.margin)
        threshold = math.cos(math.pi - self.margin)
        target = torch.where(cos.gather(1, labels[:, None]) > threshold, target, fallback)
        logits = cos.scatter(1, labels[:, None], target) * self.scale
        loss = F.cross_entropy(logits, labels)
        acc = (cos.argmax(-1) == labels).float().mean()
        return loss, acc
