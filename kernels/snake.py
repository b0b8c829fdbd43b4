"""Snake activation x + sin^2(a x) / a with a per-channel alpha, as a Triton kernel and its reference.

Snake (Ziyin et al. 2020) is the periodic activation of the DAC / BigVGAN wave generators that
UniSS's BiCodec decoder uses (DESIGN §1): it runs on every channel of every upsampling stage at the
full sample rate, so for 16 kHz output it touches far more values than the LM does per token. In
torch it is five elementwise kernels (mul, sin, pow, reciprocal-mul, add) over [B, C, T]; the
kernel reads x once and writes once. `1 / (alpha + 1e-9)` is DAC's guard against alpha = 0.

The math is fp32 in both paths and the result is rounded once to x's dtype; for bf16 input that
is more accurate than DAC's in-dtype chain, and the tests hold both paths to the same tolerance.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from dragoman.kernels.dispatch import use_triton


@triton.jit
def _snake_kernel(x_ptr, alpha_ptr, out_ptr, n_channels, length, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < length
    a = tl.load(alpha_ptr + row % n_channels).to(tl.float32)
    x = tl.load(x_ptr + row * length + offs, mask=mask, other=0.0)
    xf = x.to(tl.float32)
    s = tl.sin(a * xf)
    y = xf + s * s * (1.0 / (a + 1e-9))
    tl.store(out_ptr + row * length + offs, y.to(x.dtype), mask=mask)


def _alpha_per_channel(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    if x.dim() != 3:
        raise ValueError(f"snake: x {tuple(x.shape)} must be [batch, channels, time]")
    a = alpha.reshape(-1)
    if a.numel() != x.shape[1]:
        raise ValueError(f"snake: alpha has {a.numel()} values for {x.shape[1]} channels")
    return a


def snake_triton(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Launch the kernel; same contract as `snake_reference`."""
    a = _alpha_per_channel(x, alpha).contiguous()
    x = x.contiguous()
    out = torch.empty_like(x)
    batch, channels, length = x.shape
    # 1,024 samples per program: 8 per thread at 4 warps; the grid's second axis covers long
    # signals (a 10 s clip at 16 kHz is 157 programs per channel row).
    block = 1024
    _snake_kernel[(batch * channels, triton.cdiv(length, block))](
        x, a, out, channels, length, BLOCK=block, num_warps=4
    )
    return out


def snake_reference(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """x [B, C, T], alpha [C] (or [1, C, 1]) -> x + sin(alpha x)^2 / (alpha + 1e-9)."""
    a = _alpha_per_channel(x, alpha).to(torch.float32).view(1, -1, 1)
    xf = x.to(torch.float32)
    return (xf + torch.sin(a * xf).pow(2) * (a + 1e-9).reciprocal()).to(x.dtype)


def snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Snake activation with one alpha per channel; Triton on CUDA, torch elsewhere."""
    if use_triton(x, alpha):
        return snake_triton(x, alpha)
    return snake_reference(x, alpha)
