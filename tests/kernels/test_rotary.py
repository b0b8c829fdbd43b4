"""Rotary embedding on q and k: Triton kernel vs torch reference, and the reference vs HF."""
import pytest
import torch
from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

from dragoman.kernels.rotary import apply_rotary, apply_rotary_reference, apply_rotary_triton, signed_sin

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.bfloat16: dict(atol=3e-2, rtol=2e-2)}
# (tokens, q heads, kv heads, head dim): Qwen2.5-1.5B decode, GQA prefill, odd half (3), MHA.
SHAPES = [(1, 12, 2, 128), (5, 4, 2, 64), (3, 3, 1, 6), (2, 2, 2, 32)]


def _angles(tokens: int, dim: int, dtype: torch.dtype, start: int = 0):
    """cos/sin rows as HF's rotary module builds them (both halves equal)."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    freqs = torch.arange(start, start + tokens, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(DEVICE, dtype), emb.sin().to(DEVICE, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
def test_kernel_matches_reference(shape, dtype):
    tokens, n_q, n_k, dim = shape
    gen = torch.Generator().manual_seed(sum(shape))
    q = torch.randn(tokens, n_q, dim, generator=gen).to(DEVICE, dtype)
    k = torch.randn(tokens, n_k, dim, generator=gen).to(DEVICE, dtype)
    cos, sin = _angles(tokens, dim, dtype, start=1000)
    got_q, got_k = apply_rotary_triton(q, k, cos, sin)
    ref_q, ref_k = apply_rotary_reference(q, k, cos, sin)
    torch.testing.assert_close(got_q, ref_q, **TOL[dtype])
    torch.testing.assert_close(got_k, ref_k, **TOL[dtype])


def test_kernel_takes_decode_layouts():
    """Views as the decode step makes them: q/k slices of a fused row, cos/sin broadcast rows."""
    fused = torch.randn(3, 12 * 16 + 2 * 16 * 2).to(DEVICE)
    q = fused[:, : 12 * 16].view(3, 12, 16)
    k = fused[:, 12 * 16: 14 * 16].view(3, 2, 16)
    cos, sin = _angles(1, 16, torch.float32, start=7)
    cos, sin = cos.expand(3, -1), sin.expand(3, -1)
    got = apply_rotary_triton(q, k, cos, sin)
    ref = apply_rotary_reference(q, k, cos, sin)
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reference_equals_hf_apply_rotary_pos_emb(dtype):
    tokens, n_q, n_k, dim = 6, 4, 2, 32
    q = torch.randn(tokens, n_q, dim, dtype=dtype)
    k = torch.randn(tokens, n_k, dim, dtype=dtype)
    cos, sin = (t.cpu() for t in _angles(tokens, dim, dtype, start=3))
    # HF layout: [batch, heads, seq, dim] with cos/sin [batch, seq, dim].
    hf_q, hf_k = apply_rotary_pos_emb(
        q.transpose(0, 1)[None], k.transpose(0, 1)[None], cos[None], sin[None]
    )
    ours_q, ours_k = apply_rotary_reference(q, k, cos, sin)
    assert torch.equal(ours_q, hf_q[0].transpose(0, 1))
    assert torch.equal(ours_k, hf_k[0].transpose(0, 1))
    pre_q, pre_k = apply_rotary(q, k, cos, sin, signed_sin(sin))
    assert torch.equal(pre_q, ours_q) and torch.equal(pre_k, ours_k)


def test_rotation_keeps_norm_and_position_zero_is_identity():
    q, k = torch.randn(2, 4, 64, dtype=torch.float64), torch.randn(2, 2, 64, dtype=torch.float64)
    cos, sin = _angles(2, 64, torch.float64, start=0)
    rq, rk = apply_rotary_reference(q.to(DEVICE), k.to(DEVICE), cos, sin)
    assert torch.allclose(rq.norm(dim=-1).cpu(), q.norm(dim=-1))
    assert torch.equal(rq[0].cpu(), q[0]) and torch.equal(rk[0].cpu(), k[0])


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match="must be even"):
        apply_rotary_reference(torch.randn(1, 2, 5), torch.randn(1, 1, 5), torch.ones(1, 5), torch.ones(1, 5))
    with pytest.raises(ValueError, match="cos"):
        apply_rotary_reference(torch.randn(2, 2, 4), torch.randn(2, 1, 4), torch.ones(1, 4), torch.ones(1, 4))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dispatch_runs_triton_on_cuda():
    q = torch.randn(1, 12, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, 2, 128, device="cuda", dtype=torch.bfloat16)
    cos, sin = _angles(1, 128, torch.bfloat16, start=4000)
    got, ref = apply_rotary(q, k, cos, sin), apply_rotary_reference(q, k, cos, sin)
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, atol=1e-2, rtol=1e-2)
