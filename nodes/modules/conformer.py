"""A small Conformer block (Gulati et al. 2020) with padding masked everywhere.

Macaron feed-forward halves around self-attention and a depthwise-convolution module, pre-norm.
Two choices keep a padded batch exactly equal to its items run alone:
- attention masks padded keys, and positions are rotary (relative), so an item's absolute
  place in a longer padded tensor changes nothing;
- the convolution module zeroes padded frames before its depthwise conv and normalises with
  LayerNorm instead of the paper's BatchNorm (BatchNorm's training statistics would mix the
  padding of other items into every frame).
DESIGN §6 measured this block (d_model 144, 6 blocks, x4 subsampling) as a ~2M-parameter zh/en
CTC recogniser; the ContentTokenizer's config says which sizes it uses and why.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def rotary(x: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of x [B, H, T, Dh] by position-dependent angles (RoFormer)."""
    half = x.shape[-1] // 2
    freqs = 1.0 / (10000 ** (torch.arange(half, device=x.device, dtype=torch.float32) / half))
    angles = torch.arange(x.shape[-2], device=x.device, dtype=torch.float32)[:, None] * freqs[None, :]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads or (dim // heads) % 2:
            raise ValueError(f"attention width {dim} must split into {heads} heads of even size")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, D], mask [B, T] (True = real frame)."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rotary(q), rotary(k)
        attn_mask = mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, mult * dim), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(mult * dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvModule(nn.Module):
    def __init__(self, dim: int, kernel_size: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.mid_norm = nn.LayerNorm(dim)
        self.pointwise_out = nn.Conv1d(dim, dim, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = F.glu(self.pointwise_in(self.norm(x).transpose(1, 2)), dim=1)
        y = self.depthwise(y * mask[:, None, :].to(y.dtype))
        y = F.silu(self.mid_norm(y.transpose(1, 2))).transpose(1, 2)
        return self.dropout(self.pointwise_out(y).transpose(1, 2))


class ConformerBlock(nn.Module):
    """With attention=False the block keeps only its convolution and feed-forward modules: a
    receptive field of `kernel_size` frames instead of the whole utterance."""

    def __init__(self, dim: int, heads: int = 4, ff_mult: int = 4, kernel_size: int = 15, dropout: float = 0.1,
                 attention: bool = True):
        super().__init__()
        self.ff1 = FeedForward(dim, ff_mult, dropout)
        self.attn_norm = nn.LayerNorm(dim) if attention else None
        self.attn = SelfAttention(dim, heads, dropout) if attention else None
        self.attn_dropout = nn.Dropout(dropout)
        self.conv = ConvModule(dim, kernel_size, dropout)
        self.ff2 = FeedForward(dim, ff_mult, dropout)
        self.out_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, D], mask [B, T] -> [B, T, D]; padded frames come out as zeros."""
        keep = mask[..., None].to(x.dtype)
        x = x + 0.5 * self.ff1(x)
        if self.attn is not None:
            x = x + self.attn_dropout(self.attn(self.attn_norm(x), mask))
        x = x + self.conv(x, mask)
        x = x + 0.5 * self.ff2(x)
        return self.out_norm(x) * keep


class ConformerStack(nn.Module):
    def __init__(self, dim: int, layers: int, heads: int, ff_mult: int, kernel_size: int, dropout: float,
                 attention: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList(ConformerBlock(dim, heads, ff_mult, kernel_size, dropout, attention)
                                    for _ in range(layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return x
