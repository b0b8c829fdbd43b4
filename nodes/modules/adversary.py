"""Speaker-adversarial branch: gradient reversal (Ganin & Lempitsky 2015) + a speaker classifier.

Content and emotion tokens should not say who is speaking (the speaker tokens do that; a
speaker-ID probe on the other streams is a reported metric). The classifier learns to name the
speaker from the quantised codes; the reversed gradient trains the encoder to make that
impossible. Used on pooled codes for utterance-level tokens and on every frame for token streams.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward; the gradient flowing back is multiplied by -scale."""
    return _Reverse.apply(x, scale)


class SpeakerAdversary(nn.Module):
    """Two-layer classifier behind a gradient-reversal layer."""

    def __init__(self, in_dim: int, num_speakers: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_speakers))

    def forward(self, features: torch.Tensor, speakers: torch.Tensor, scale: float,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """features [B, D] (one per utterance) or [B, T, D] with mask [B, T] (one per frame).
        Returns (cross-entropy loss, accuracy) of the adversary on the valid items/frames."""
        logits = self.net(reverse_gradient(features, scale))
        if logits.dim() == 3:
            targets = speakers[:, None].expand(-1, logits.shape[1])
            keep = mask if mask is not None else torch.ones_like(targets, dtype=torch.bool)
            logits, targets = logits[keep], targets[keep]
        else:
            targets = speakers
        loss = F.cross_entropy(logits, targets)
        acc = (logits.argmax(-1) == targets).float().mean()
        return loss, acc
