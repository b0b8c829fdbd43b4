"""RMSNorm + residual: Triton kernel vs torch reference, and the reference vs HF's Qwen2RMSNorm."""
import pytest
import torch
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

from dragoman.kernels.dispatch import use_reference
from dragoman.kernels.rmsnorm import rms_norm, rms_norm_reference, rms_norm_triton

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# bf16: the interpreter truncates fp32 -> bf16 where a GPU rounds to nearest, so allow ~2 ulp.
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.bfloat16: dict(atol=2e-2, rtol=2e-2)}
SHAPES = [(1, 1536), (3, 64), (2, 5, 100), (1, 1), (4, 777)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_residual", [False, True])
def test_kernel_matches_reference(shape, dtype, with_residual):
    gen = torch.Generator().manual_seed(hash((shape, with_residual)) % 2**31)
    x = torch.randn(shape, generator=gen).to(DEVICE, dtype)
    res = torch.randn(shape, generator=gen).to(DEVICE, dtype) if with_residual else None
    w = (torch.rand(shape[-1], generator=gen) * 2).to(DEVICE, dtype)
    out, new_res = rms_norm_triton(x, w, 1e-6, res)
    ref_out, ref_res = rms_norm_reference(x, w, 1e-6, res)
    assert out.dtype == ref_out.dtype and out.shape == ref_out.shape
    torch.testing.assert_close(out, ref_out, **TOL[dtype])
    torch.testing.assert_close(new_res, ref_res, **TOL[dtype])


def test_kernel_reads_strided_rows():
    x = torch.randn(4, 300).to(DEVICE)[:, :200]
    w = torch.rand(200).to(DEVICE)
    torch.testing.assert_close(rms_norm_triton(x, w, 1e-5)[0], rms_norm_reference(x, w, 1e-5)[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reference_is_hf_residual_then_qwen2_rmsnorm(dtype):
    norm = Qwen2RMSNorm(96, eps=1e-6).to(dtype)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(96) + 0.5)
    x, res = torch.randn(3, 96, dtype=dtype), torch.randn(3, 96, dtype=dtype)
    with torch.no_grad():
        want = norm(res + x)
    out, new_res = rms_norm_reference(x, norm.weight.detach(), 1e-6, res)
    assert torch.equal(out, want)
    assert torch.equal(new_res, res + x)


def test_dispatch_uses_reference_on_cpu_and_for_autograd():
    x = torch.randn(2, 32, requires_grad=True)
    w = torch.rand(32)
    out, _ = rms_norm(x, w, 1e-6)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with use_reference():
        assert torch.equal(rms_norm(x.detach(), w, 1e-6)[0], rms_norm_reference(x.detach(), w, 1e-6)[0])


def test_rejects_mismatched_weight():
    with pytest.raises(ValueError, match="weight shape"):
        rms_norm_triton(torch.randn(2, 8, device=DEVICE), torch.ones(7, device=DEVICE), 1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dispatch_runs_triton_on_cuda():
    x = torch.randn(8, 1536, device="cuda", dtype=torch.bfloat16)
    res = torch.randn_like(x)
    w = torch.rand(1536, device="cuda", dtype=torch.bfloat16)
    out, new_res = rms_norm(x, w, 1e-6, res)
    ref, ref_res = rms_norm_reference(x, w, 1e-6, res)
    torch.testing.assert_close(out, ref, atol=1e-2, rtol=1e-2)
    assert torch.equal(new_res, ref_res)
