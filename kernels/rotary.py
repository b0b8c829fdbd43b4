"""Rotary position embedding applied to q and k in one launch (Qwen2 / HF rotate-half convention).

HF's `apply_rotary_pos_emb` builds `rotate_half(q)` (a `cat` of two halves), multiplies, adds, and
does it all again for k: eight kernels and three temporaries per layer per decoded token. Here one
program handles one (token, head) row of q or k: it loads the two halves, the cos and sin of the
token's position, and writes `x * cos + rotate_half(x) * sin` directly.

Layout: q [T, Hq, D], k [T, Hkv, D] (T tokens, any strides with a unit last stride), cos/sin
[T, D] as HF's rotary module returns them (both halves equal). Rounding copies HF's, which runs in
the model dtype: each product is rounded to the dtype, then their sum, so bf16 results match HF's
bit for bit up to fp32-vs-fp32 multiply order.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from dragoman.kernels.dispatch import use_triton


@triton.jit
def _rotary_kernel(
    q_ptr, k_ptr, cos_ptr, sin_ptr, q_out_ptr, k_out_ptr,
    n_q_heads, half,
    stride_qt, stride_qh, stride_kt, stride_kh, stride_ct, stride_st,
    stride_qot, stride_qoh, stride_kot, stride_koh,
    BLOCK: tl.constexpr,
):
    token = tl.program_id(0).to(tl.int64)
    head = tl.program_id(1)
    cols = tl.arange(0, BLOCK)
    mask = cols < half
    if head < n_q_heads:
        src = q_ptr + token * stride_qt + head * stride_qh
        dst = q_out_ptr + token * stride_qot + head * stride_qoh
    else:
        src = k_ptr + token * stride_kt + (head - n_q_heads) * stride_kh
        dst = k_out_ptr + token * stride_kot + (head - n_q_heads) * stride_koh
    x1 = tl.load(src + cols, mask=mask, other=0.0)
    x2 = tl.load(src + half + cols, mask=mask, other=0.0)
    dtype = x1.dtype
    cos1 = tl.load(cos_ptr + token * stride_ct + cols, mask=mask, other=0.0).to(dtype).to(tl.float32)
    cos2 = tl.load(cos_ptr + token * stride_ct + half + cols, mask=mask, other=0.0).to(dtype).to(tl.float32)
    sin1 = tl.load(sin_ptr + token * stride_st + cols, mask=mask, other=0.0).to(dtype).to(tl.float32)
    sin2 = tl.load(sin_ptr + token * stride_st + half + cols, mask=mask, other=0.0).to(dtype).to(tl.float32)
    a1 = x1.to(tl.float32)
    a2 = x2.to(tl.float32)
    # rotate_half(x) = cat(-x2, x1): first half x1*cos - x2*sin, second half x2*cos + x1*sin.
    out1 = (a1 * cos1).to(dtype).to(tl.float32) - (a2 * sin1).to(dtype).to(tl.float32)
    out2 = (a2 * cos2).to(dtype).to(tl.float32) + (a1 * sin2).to(dtype).to(tl.float32)
    tl.store(dst + cols, out1.to(dtype), mask=mask)
    tl.store(dst + half + cols, out2.to(dtype), mask=mask)


def _check(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    if q.dim() != 3 or k.dim() != 3 or q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2]:
        raise ValueError(f"apply_rotary: q {tuple(q.shape)} and k {tuple(k.shape)} must be [T, H, D]")
    if q.shape[2] % 2:
        raise ValueError(f"apply_rotary: head dim {q.shape[2]} must be even")
    want = (q.shape[0], q.shape[2])
    if cos.shape != want or sin.shape != want:
        raise ValueError(f"apply_rotary: cos {tuple(cos.shape)} / sin {tuple(sin.shape)} != {want}")


def apply_rotary_triton(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the kernel; same contract as `apply_rotary_reference`."""
    _check(q, k, cos, sin)
    q, k, cos, sin = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, cos, sin))
    tokens, n_q, dim = q.shape
    n_k = k.shape[1]
    q_out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    k_out = torch.empty(k.shape, dtype=k.dtype, device=k.device)
    half = dim // 2
    _rotary_kernel[(tokens, n_q + n_k)](
        q, k, cos, sin, q_out, k_out,
        n_q, half,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), cos.stride(0), sin.stride(0),
        q_out.stride(0), q_out.stride(1), k_out.stride(0), k_out.stride(1),
        BLOCK=triton.next_power_of_2(half), num_warps=1 if half <= 128 else 2,
    )
    return q_out, k_out


def signed_sin(sin: torch.Tensor) -> torch.Tensor:
    """cat(-sin[:, :D/2], sin[:, D/2:]): the sign of rotate_half folded into sin (see below)."""
    half = sin.shape[-1] // 2
    return torch.cat((-sin[:, :half], sin[:, half:]), dim=-1)


def apply_rotary_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    sin_signed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """q [T, Hq, D], k [T, Hkv, D], cos/sin [T, D] -> rotated (q, k), HF's formula and dtypes.

    rotate_half(x) * sin = cat(-x2, x1) * sin is computed as roll(x, D/2) * `signed_sin(sin)`:
    the same values bit for bit (a sign flip is exact) with one op where HF uses four. A caller
    rotating every layer at the same positions passes `sin_signed` once per step. On the CI CPU
    each op costs 1-3 us and a tiny model's step is ~200 us, so these ops are the step's cost.
    """
    _check(q, k, cos, sin)
    if sin_signed is None:
        sin_signed = signed_sin(sin)
    half = q.shape[-1] // 2
    cos_q, sin_q = cos.unsqueeze(1).to(q.dtype), sin_signed.unsqueeze(1).to(q.dtype)
    q_out = q * cos_q + torch.roll(q, half, dims=-1) * sin_q
    if k.dtype != q.dtype:
        cos_q, sin_q = cos.unsqueeze(1).to(k.dtype), sin_signed.unsqueeze(1).to(k.dtype)
    return q_out, k * cos_q + torch.roll(k, half, dims=-1) * sin_q


def apply_rotary(
    q: torch.Tensor,
    k: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    sin_signed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate q and k by the positions whose cos/sin rows are given (one row per token).

    `sin_signed` (`signed_sin(sin)`) is an optional precomputation for the torch path.
    """
    if use_triton(q, k, cos, sin):
        return apply_rotary_triton(q, k, cos, sin)
    return apply_rotary_reference(q, k, cos, sin, sin_signed)
