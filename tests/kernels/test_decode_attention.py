"""Split-K decode attention over a static GQA cache: Triton kernel vs reference vs float64 math."""
import pytest
import torch

from dragoman.kernels.decode_attention import (
    decode_attention,
    decode_attention_reference,
    decode_attention_triton,
)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: dict(atol=2e-5, rtol=2e-5), torch.bfloat16: dict(atol=1e-2, rtol=2e-2)}
# (query heads, kv heads, head dim, capacity, lengths per row, splits):
CASES = [
    (12, 2, 128, 320, [300], 4),  # Qwen2.5-1.5B: G = 6 (not a power of 2)
    (4, 4, 64, 64, [1, 17, 64], 3),  # plain MHA (G = 1), a length-1 row, a full cache
    (6, 2, 80, 100, [33, 5], 8),  # head dim 80, many splits left empty for the short row
    (8, 1, 32, 40, [40], 1),  # MQA, no split
]


def _naive(q, k_cache, v_cache, lengths, scale):
    """Per row and head, softmax(q k^T) v in float64 with explicit repetition of KV heads."""
    batch, n_q, _ = q.shape
    group = n_q // k_cache.shape[1]
    out = torch.empty(q.shape, dtype=torch.float64)
    for b in range(batch):
        n = int(lengths[b])
        for h in range(n_q):
            k = k_cache[b, h // group, :n].double().cpu()
            v = v_cache[b, h // group, :n].double().cpu()
            w = torch.softmax(k @ q[b, h].double().cpu() * scale, dim=0)
            out[b, h] = w @ v
    return out


def _inputs(case, dtype, seed):
    n_q, n_kv, dim, capacity, lengths, _ = case
    gen = torch.Generator().manual_seed(seed)
    batch = len(lengths)
    q = torch.randn(batch, n_q, dim, generator=gen).to(DEVICE, dtype)
    k = (torch.randn(batch, n_kv, capacity, dim, generator=gen) * 2).to(DEVICE, dtype)
    v = torch.randn(batch, n_kv, capacity, dim, generator=gen).to(DEVICE, dtype)
    return q, k, v, torch.tensor(lengths, dtype=torch.int32, device=DEVICE), dim**-0.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}q{c[1]}kv{c[2]}d{len(c[4])}b{c[5]}s")
def test_kernel_matches_reference(case, dtype):
    q, k, v, lengths, scale = _inputs(case, dtype, seed=case[2])
    got = decode_attention_triton(q, k, v, lengths, scale, num_splits=case[5])
    ref = decode_attention_reference(q, k, v, lengths, scale)
    assert got.shape == q.shape and got.dtype == dtype
    torch.testing.assert_close(got, ref, **TOL[dtype])


@pytest.mark.parametrize("case", CASES[:3], ids=["gqa6", "mha", "d80"])
def test_both_paths_match_float64_attention(case):
    q, k, v, lengths, scale = _inputs(case, torch.float32, seed=7)
    want = _naive(q, k, v, lengths, scale).float()
    ref = decode_attention_reference(q, k, v, lengths, scale)
    torch.testing.assert_close(ref.cpu(), want, atol=1e-5, rtol=1e-4)
    got = decode_attention_triton(q, k, v, lengths, scale, num_splits=case[5])
    torch.testing.assert_close(got.cpu(), want, atol=1e-5, rtol=1e-4)


def test_split_count_does_not_change_the_result():
    q, k, v, lengths, scale = _inputs((12, 2, 64, 256, [250], 1), torch.float32, seed=3)
    one = decode_attention_triton(q, k, v, lengths, scale, num_splits=1)
    for splits in (2, 5, 16):
        torch.testing.assert_close(decode_attention_triton(q, k, v, lengths, scale, num_splits=splits), one)


def test_positions_past_the_length_are_ignored():
    q, k, v, lengths, scale = _inputs((4, 2, 32, 50, [20, 20], 2), torch.float32, seed=5)
    before = decode_attention_triton(q, k, v, lengths, scale, num_splits=2)
    k[:, :, 20:] = 1e4
    v[:, :, 20:] = float("nan")
    after = decode_attention_triton(q, k, v, lengths, scale, num_splits=2)
    assert torch.equal(before, after)
    ref = decode_attention_reference(q, k, v, lengths, scale)
    torch.testing.assert_close(ref, before, **TOL[torch.float32])


def test_rejects_heads_that_do_not_group():
    q = torch.randn(1, 5, 16)
    cache = torch.randn(1, 2, 8, 16)
    with pytest.raises(ValueError, match="does not fit"):
        decode_attention(q, cache, cache, torch.tensor([4], dtype=torch.int32), 0.25)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dispatch_runs_triton_on_cuda_long_context():
    gen = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(1, 12, 128, device="cuda", dtype=torch.bfloat16, generator=gen)
    k = torch.randn(1, 2, 8192, 128, device="cuda", dtype=torch.bfloat16, generator=gen)
    v = torch.randn(1, 2, 8192, 128, device="cuda", dtype=torch.bfloat16, generator=gen)
    lengths = torch.tensor([8000], dtype=torch.int32, device="cuda")
    got = decode_attention(q, k, v, lengths, 128**-0.5)
    ref = decode_attention_reference(q, k, v, lengths, 128**-0.5)
    torch.testing.assert_close(got, ref, atol=1e-2, rtol=2e-2)
