"""Snake x + sin^2(a x) / a: Triton kernel vs torch reference vs the formula in float64."""
import pytest
import torch

from dragoman.kernels.snake import snake, snake_reference, snake_triton

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.bfloat16: dict(atol=3e-2, rtol=2e-2)}
# (batch, channels, time): odd lengths, one channel, a length over two program blocks.
SHAPES = [(1, 3, 100), (2, 5, 2049), (1, 1, 1), (3, 16, 37)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
def test_kernel_matches_reference(shape, dtype):
    gen = torch.Generator().manual_seed(shape[1] * 10000 + shape[2])
    x = (torch.randn(shape, generator=gen) * 3).to(DEVICE, dtype)
    alpha = (torch.rand(shape[1], generator=gen) * 2 + 0.05).to(DEVICE)
    got = snake_triton(x, alpha)
    assert got.dtype == dtype and got.shape == x.shape
    torch.testing.assert_close(got, snake_reference(x, alpha), **TOL[dtype])


def test_reference_is_the_dac_formula():
    x = torch.randn(2, 4, 50, dtype=torch.float64)
    alpha = torch.tensor([0.3, 1.0, 2.5, 7.0], dtype=torch.float64).view(1, -1, 1)
    want = x + (alpha + 1e-9).reciprocal() * torch.sin(alpha * x).pow(2)
    torch.testing.assert_close(snake_reference(x.float(), alpha), want.float(), atol=1e-6, rtol=1e-6)


def test_zero_alpha_is_guarded():
    x = torch.randn(1, 2, 64, device=DEVICE)
    alpha = torch.tensor([0.0, 1.0], device=DEVICE)
    for out in (snake_triton(x, alpha), snake_reference(x, alpha)):
        assert torch.isfinite(out).all()
        assert torch.equal(out[:, 0], x[:, 0])  # sin(0)^2 / 1e-9 = 0


def test_alpha_may_be_shaped_like_dac_parameters():
    x = torch.randn(2, 3, 40, device=DEVICE)
    alpha = torch.rand(1, 3, 1, device=DEVICE) + 0.5
    torch.testing.assert_close(snake_triton(x, alpha), snake_reference(x, alpha.view(-1)))


def test_rejects_wrong_alpha_count():
    with pytest.raises(ValueError, match="alpha"):
        snake(torch.randn(1, 3, 10), torch.ones(4))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dispatch_runs_triton_on_cuda():
    x = torch.randn(2, 512, 16000, device="cuda", dtype=torch.bfloat16)
    alpha = torch.rand(512, device="cuda") + 0.1
    torch.testing.assert_close(snake(x, alpha), snake_reference(x, alpha), atol=3e-2, rtol=2e-2)
