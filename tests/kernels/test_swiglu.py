"""SwiGLU silu(gate) * up: Triton kernel vs torch reference vs HF's Qwen2MLP activation."""
import pytest
import torch
from transformers.activations import ACT2FN

from dragoman.kernels.swiglu import swiglu, swiglu_reference, swiglu_triton

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: dict(atol=1e-6, rtol=1e-5), torch.bfloat16: dict(atol=2e-2, rtol=2e-2)}
SHAPES = [(1, 8960), (3, 333), (1,), (2, 7, 1025)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
def test_kernel_matches_reference(shape, dtype):
    gen = torch.Generator().manual_seed(len(shape) * 1000 + shape[-1])
    gate = (torch.randn(shape, generator=gen) * 4).to(DEVICE, dtype)
    up = torch.randn(shape, generator=gen).to(DEVICE, dtype)
    got = swiglu_triton(gate, up)
    assert got.shape == gate.shape and got.dtype == dtype
    torch.testing.assert_close(got, swiglu_reference(gate, up), **TOL[dtype])


def test_kernel_handles_large_magnitudes():
    gate = torch.tensor([-100.0, -30.0, 0.0, 30.0, 100.0], device=DEVICE)
    up = torch.full_like(gate, 2.0)
    got = swiglu_triton(gate, up)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, swiglu_reference(gate, up))


def test_reference_is_qwen2_mlp_activation():
    gate, up = torch.randn(4, 96), torch.randn(4, 96)
    assert torch.equal(swiglu(gate, up), ACT2FN["silu"](gate) * up)


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="gate"):
        swiglu_triton(torch.randn(2, 3, device=DEVICE), torch.randn(3, 2, device=DEVICE))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dispatch_runs_triton_on_cuda():
    gate = torch.randn(4, 8960, device="cuda", dtype=torch.bfloat16)
    up = torch.randn_like(gate)
    torch.testing.assert_close(swiglu(gate, up), swiglu_reference(gate, up), atol=1e-2, rtol=1e-2)
