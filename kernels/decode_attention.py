"""Decode attention over a static KV cache with grouped KV heads and split-K (two passes).

At decode time each sequence has one query token per head and a cache of L keys/values: the work
is reading the cache once. Two choices follow from Qwen2.5-1.5B's shape (12 query heads sharing 2
KV heads, head dim 128):

- Grouping: one program serves all G = Hq / Hkv query heads of a KV head, so each cached key and
  value is read once for the whole group instead of G times (G = 6 here).
- Split-K: with batch 1 there are only Hkv = 2 (batch, KV head) pairs, far fewer than a GPU's
  ~132 SMs, so the cache length is also split across `num_splits` programs. Pass 1 writes each
  split's normalised output and log-sum-exp; pass 2 merges the splits per query head
  (out = sum_s exp(lse_s - lse) o_s). The split length is derived in the kernel from the row's
  current length (read from device memory), so the launch shape depends only on the cache's
  capacity and the whole step can be captured once in a CUDA graph.

The score and output products use broadcast-and-sum, not `tl.dot`: G <= 8 rows would fill at most
half of the 16-row MMA tile and the op is bandwidth-bound either way; also Triton 3.8's interpreter
multiplies bf16 `tl.dot` operands as raw uint16 bits, which would leave the tested path untested.

Layout: q [B, Hq, D]; k_cache, v_cache [B, Hkv, capacity, D] (unit last stride); lengths [B]
int32 with the number of valid cache positions per row (1 <= length <= capacity).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from dragoman.kernels.dispatch import use_triton


@triton.jit
def _attention_split_kernel(
    q_ptr, k_ptr, v_ptr, len_ptr, o_ptr, lse_ptr,
    scale, group, head_dim,
    stride_qb, stride_qh,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_os,
    stride_lb, stride_lh,
    NUM_SPLITS: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    kv_head = tl.program_id(1)
    split = tl.program_id(2)
    length = tl.load(len_ptr + b)
    split_len = tl.cdiv(tl.cdiv(length, NUM_SPLITS), BLOCK_N) * BLOCK_N
    start = split * split_len
    end = tl.minimum(start + split_len, length)

    g = tl.arange(0, BLOCK_G)
    d = tl.arange(0, BLOCK_D)
    g_mask = g < group
    d_mask = d < head_dim
    heads = kv_head * group + g
    q = tl.load(
        q_ptr + b * stride_qb + heads[:, None] * stride_qh + d[None, :],
        mask=g_mask[:, None] & d_mask[None, :], other=0.0,
    ).to(tl.float32) * scale

    m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], tl.float32)
    k_base = k_ptr + b * stride_kb + kv_head * stride_kh
    v_base = v_ptr + b * stride_vb + kv_head * stride_vh
    for n0 in range(start, end, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        n_mask = n < end
        kv_mask = n_mask[:, None] & d_mask[None, :]
        k = tl.load(k_base + n[:, None] * stride_kn + d[None, :], mask=kv_mask, other=0.0)
        scores = tl.sum(q[:, None, :] * k.to(tl.float32)[None, :, :], axis=2)
        scores = tl.where(n_mask[None, :], scores, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(scores, axis=1))
        correction = tl.exp(m_i - m_new)
        p = tl.exp(scores - m_new[:, None])
        v = tl.load(v_base + n[:, None] * stride_vn + d[None, :], mask=kv_mask, other=0.0)
        acc = acc * correction[:, None] + tl.sum(p[:, :, None] * v.to(tl.float32)[None, :, :], axis=1)
        l_i = l_i * correction + tl.sum(p, axis=1)
        m_i = m_new

    # An empty split (start >= length) leaves l_i = 0: it stores lse = -inf and a zero output,
    # which pass 2 weighs by exp(-inf) = 0.
    has_work = l_i > 0
    out = acc / tl.where(has_work, l_i, 1.0)[:, None]
    lse = tl.where(has_work, m_i + tl.log(tl.where(has_work, l_i, 1.0)), float("-inf"))
    o_offs = b * stride_ob + heads[:, None] * stride_oh + split * stride_os + d[None, :]
    tl.store(o_ptr + o_offs, out, mask=g_mask[:, None] & d_mask[None, :])
    tl.store(lse_ptr + b * stride_lb + heads * stride_lh + split, lse, mask=g_mask)


@triton.jit
def _attention_merge_kernel(
    o_ptr, lse_ptr, out_ptr, head_dim,
    stride_ob, stride_oh, stride_os, stride_lb, stride_lh, stride_outb, stride_outh,
    NUM_SPLITS: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    head = tl.program_id(1)
    s = tl.arange(0, BLOCK_S)
    d = tl.arange(0, BLOCK_D)
    s_mask = s < NUM_SPLITS
    d_mask = d < head_dim
    lse = tl.load(lse_ptr + b * stride_lb + head * stride_lh + s, mask=s_mask, other=float("-inf"))
    lse_max = tl.max(lse, axis=0)
    weights = tl.exp(lse - lse_max)
    o = tl.load(
        o_ptr + b * stride_ob + head * stride_oh + s[:, None] * stride_os + d[None, :],
        mask=s_mask[:, None] & d_mask[None, :], other=0.0,
    )
    out = tl.sum(o * weights[:, None], axis=0) / tl.sum(weights, axis=0)
    out_ptrs = out_ptr + b * stride_outb + head * stride_outh + d
    tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=d_mask)


def _check(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, lengths: torch.Tensor) -> int:
    """Validate shapes; return the group size G = Hq / Hkv."""
    if q.dim() != 3 or k_cache.dim() != 4 or v_cache.shape != k_cache.shape:
        raise ValueError(
            f"decode_attention: q {tuple(q.shape)} must be [B, Hq, D] and caches "
            f"{tuple(k_cache.shape)} / {tuple(v_cache.shape)} equal [B, Hkv, capacity, D]"
        )
    batch, n_q, dim = q.shape
    if k_cache.shape[0] != batch or k_cache.shape[3] != dim or n_q % k_cache.shape[1]:
        raise ValueError(
            f"decode_attention: q {tuple(q.shape)} does not fit cache {tuple(k_cache.shape)}"
        )
    if lengths.shape != (batch,):
        raise ValueError(f"decode_attention: lengths {tuple(lengths.shape)} != ({batch},)")
    return n_q // k_cache.shape[1]


def default_num_splits(batch: int, kv_heads: int, capacity: int, block_n: int = 16) -> int:
    """Splits so that (batch x KV heads x splits) covers a GPU about twice, each split >= 4 blocks."""
    if torch.cuda.is_available():
        sms = torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count
    else:
        sms = 1
    want = max(1, (2 * sms) // max(1, batch * kv_heads))
    return max(1, min(want, triton.cdiv(capacity, 4 * block_n)))


def decode_attention_triton(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    lengths: torch.Tensor,
    scale: float,
    num_splits: int | None = None,
    block_n: int = 16,
) -> torch.Tensor:
    """Launch pass 1 (per split) and pass 2 (merge); same contract as the reference."""
    group = _check(q, k_cache, v_cache, lengths)
    if q.stride(-1) != 1 or k_cache.stride(-1) != 1 or v_cache.stride(-1) != 1:
        raise ValueError("decode_attention: q and the caches need a unit stride on the head dim")
    batch, n_q, dim = q.shape
    kv_heads, capacity = k_cache.shape[1], k_cache.shape[2]
    if num_splits is None:
        num_splits = default_num_splits(batch, kv_heads, capacity, block_n)
    lengths = lengths.to(torch.int32).contiguous()
    partial = torch.empty((batch, n_q, num_splits, dim), dtype=torch.float32, device=q.device)
    lse = torch.empty((batch, n_q, num_splits), dtype=torch.float32, device=q.device)
    block_d = triton.next_power_of_2(dim)
    _attention_split_kernel[(batch, kv_heads, num_splits)](
        q, k_cache, v_cache, lengths, partial, lse,
        float(scale), group, dim,
        q.stride(0), q.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2),
        partial.stride(0), partial.stride(1), partial.stride(2),
        lse.stride(0), lse.stride(1),
        NUM_SPLITS=num_splits, BLOCK_G=max(2, triton.next_power_of_2(group)), BLOCK_N=block_n,
        BLOCK_D=block_d, num_warps=4,
    )
    out = torch.empty_like(q)
    _attention_merge_kernel[(batch, n_q)](
        partial, lse, out, dim,
        partial.stride(0), partial.stride(1), partial.stride(2), lse.stride(0), lse.stride(1),
        out.stride(0), out.stride(1),
        NUM_SPLITS=num_splits, BLOCK_S=max(2, triton.next_power_of_2(num_splits)), BLOCK_D=block_d,
        num_warps=1 if num_splits <= 16 else 4,
    )
    return out


def decode_attention_reference(
    q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, lengths: torch.Tensor, scale: float
) -> torch.Tensor:
    """softmax(q k^T * scale) v over each row's first `lengths[b]` cache positions.

    Torch's SDPA over the filled part of the cache (the same fused op HF's default attention
    calls; 13 us against 27 us for matmul-softmax-matmul per layer on the CI CPU), with a mask
    only when rows have different lengths.
    """
    _check(q, k_cache, v_cache, lengths)
    batch, n_q, dim = q.shape
    per_row = lengths.tolist()
    longest = max(per_row)
    mask = None
    if min(per_row) != longest:
        valid = torch.arange(longest, device=q.device)[None, :] < lengths[:, None]
        mask = valid[:, None, None, :]
    out = F.scaled_dot_product_attention(
        q.unsqueeze(2), k_cache[:, :, :longest], v_cache[:, :, :longest],
        attn_mask=mask, scale=scale, enable_gqa=n_q != k_cache.shape[1],
    )
    return out.view(batch, n_q, dim)


def decode_attention(
    q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, lengths: torch.Tensor, scale: float
) -> torch.Tensor:
    """One query token per row and head over a static KV cache; Triton on CUDA, torch elsewhere."""
    if use_triton(q, k_cache, v_cache, lengths):
        return decode_attention_triton(q, k_cache, v_cache, lengths, scale)
    return decode_attention_reference(q, k_cache, v_cache, lengths, scale)
