"""RMSNorm with a fused residual add (Qwen2 / T5 style), as a Triton kernel and its torch reference.

A Qwen2 decoder layer adds a residual before each of its two norms; `hidden = residual + x`
followed by `norm(hidden)` reads `x` and `residual` twice and writes `hidden` once more than
needed. The kernel reads both once, writes the sum (the next residual) and the normed row, in one
launch per call: at decode time every row is a single token (1,536 wide for Qwen2.5-1.5B), so the
launch count matters as much as the bytes.

Rounding follows `Qwen2RMSNorm` exactly: the sum is rounded to the input dtype (as torch's add in
the model dtype does), the statistics are fp32, the normalised row is rounded to the input dtype
*before* the weight multiply, and the product takes torch's promoted dtype of weight and input.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from dragoman.kernels.dispatch import use_triton


@triton.jit
def _rms_norm_kernel(
    x_ptr, res_ptr, w_ptr, out_ptr, sum_ptr,
    n_cols, eps,
    stride_x, stride_res, stride_out, stride_sum,
    HAS_RESIDUAL: tl.constexpr, BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0)
    if HAS_RESIDUAL:
        res = tl.load(res_ptr + row * stride_res + cols, mask=mask, other=0.0)
        x = (x.to(tl.float32) + res.to(tl.float32)).to(x_ptr.dtype.element_ty)
        tl.store(sum_ptr + row * stride_sum + cols, x, mask=mask)
    xf = x.to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(xf * xf, axis=0) / n_cols + eps)
    normed = (xf * rstd).to(x_ptr.dtype.element_ty)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0)
    y = w.to(tl.float32) * normed.to(tl.float32)
    tl.store(out_ptr + row * stride_out + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """A 2-D view [rows, cols] with unit column stride (copies only if the layout needs it)."""
    t2 = t.reshape(-1, t.shape[-1])
    return t2 if t2.stride(-1) == 1 else t2.contiguous()


def rms_norm_triton(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the kernel; same contract as `rms_norm_reference`."""
    if weight.shape != (x.shape[-1],):
        raise ValueError(f"rms_norm: weight shape {tuple(weight.shape)} != ({x.shape[-1]},)")
    if residual is not None and residual.shape != x.shape:
        raise ValueError(f"rms_norm: residual {tuple(residual.shape)} != x {tuple(x.shape)}")
    n_cols = x.shape[-1]
    x2 = _rows(x)
    out = torch.empty(x.shape, dtype=torch.result_type(weight, x), device=x.device)
    out2 = out.view(-1, n_cols)
    if residual is None:
        res2, sum_out, sum2 = x2, x, x2
    else:
        res2 = _rows(residual)
        sum_out = torch.empty_like(x)
        sum2 = sum_out.view(-1, n_cols)
    block = triton.next_power_of_2(n_cols)
    # One row per program; 8 warps once a row is wider than 2,048 values keeps each thread's
    # share of the row (and its registers) the same as for a 1,536-wide Qwen2.5-1.5B row.
    num_warps = 4 if block <= 2048 else 8
    _rms_norm_kernel[(x2.shape[0],)](
        x2, res2, weight, out2, sum2,
        n_cols, float(eps),
        x2.stride(0), res2.stride(0), out2.stride(0), sum2.stride(0),
        HAS_RESIDUAL=residual is not None, BLOCK=block, num_warps=num_warps,
    )
    return out, sum_out


def rms_norm_reference(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (norm(x + residual) * weight, x + residual); without a residual the second is x."""
    if residual is not None:
        x = x + residual
    # `.to()` is skipped when it would be a no-op: each saved dispatch is ~1 us per decoded token.
    h = x if x.dtype == torch.float32 else x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * (h if x.dtype == torch.float32 else h.to(x.dtype)), x


def rms_norm(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """RMSNorm over the last dim with an optional residual added first: (normed, new residual)."""
    if use_triton(x, weight, residual):
        return rms_norm_triton(x, weight, eps, residual)
    return rms_norm_reference(x, weight, eps, residual)
