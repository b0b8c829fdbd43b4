"""Sampling: the fused logits pass vs its reference, HF logits-processor semantics, draw properties."""
import pytest
import torch
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from dragoman.kernels.sampling import (
    SamplingConfig,
    candidates,
    greedy,
    logits_pass_reference,
    logits_pass_triton,
    sample,
    sample_processed,
    seen_mask,
)
from dragoman.nodes.errors import DragomanError

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
UNISS_VOCAB = 180407


def _logits(batch, vocab, seed, scale=3.0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, vocab, generator=gen) * scale).to(DEVICE, dtype)


@pytest.mark.parametrize(
    "dtype,penalty,temperature",
    [(torch.float32, 1.0, 1.0), (torch.float32, 1.3, 0.7), (torch.bfloat16, 1.1, 0.7)],
)
def test_fused_pass_matches_reference_on_uniss_vocab(dtype, penalty, temperature):
    logits = _logits(2, UNISS_VOCAB, seed=1, dtype=dtype)
    history = torch.randint(0, UNISS_VOCAB, (2, 300), generator=torch.Generator().manual_seed(2))
    seen = seen_mask(history.to(DEVICE), UNISS_VOCAB)
    x, lse, arg = logits_pass_triton(logits, seen, penalty, temperature)
    rx, rlse, rarg = logits_pass_reference(logits, seen, penalty, temperature)
    # Same fp32 operations elementwise, so the processed rows are identical.
    assert torch.equal(x, rx)
    torch.testing.assert_close(lse, rlse, atol=1e-4, rtol=1e-6)
    assert torch.equal(arg, rarg)
    _, lse2, arg2 = logits_pass_triton(logits, seen, penalty, temperature, store=False)
    assert torch.equal(arg2, arg) and torch.equal(lse2, lse)


@pytest.mark.parametrize("vocab", [1, 5, 2049])
def test_fused_pass_small_and_odd_vocabularies(vocab):
    logits = _logits(3, vocab, seed=vocab)
    x, lse, arg = logits_pass_triton(logits, None, temperature=0.5)
    rx, rlse, rarg = logits_pass_reference(logits, None, temperature=0.5)
    assert torch.equal(x, rx) and torch.equal(arg, rarg)
    torch.testing.assert_close(lse, rlse)


def test_argmax_ties_go_to_the_lowest_id_across_chunks():
    logits = torch.zeros(1, 10000, device=DEVICE)
    logits[0, [9000, 4097, 4100]] = 5.0
    assert logits_pass_triton(logits, None)[2].item() == 4097 == logits.argmax(-1).item()


def test_banned_ids_and_a_fully_banned_chunk():
    logits = _logits(2, 9000, seed=4)
    logits[:, :4096] = float("-inf")
    logits[1, 5000:] = float("-inf")
    x, lse, arg = logits_pass_triton(logits, None, temperature=0.9)
    rx, rlse, rarg = logits_pass_reference(logits, None, temperature=0.9)
    assert torch.isfinite(lse).all()
    torch.testing.assert_close(lse, rlse)
    assert torch.equal(arg, rarg) and torch.equal(x, rx)


def test_penalty_is_hf_repetition_penalty_with_duplicate_ids():
    logits = _logits(3, 700, seed=5)
    ids = torch.randint(0, 700, (3, 60), generator=torch.Generator().manual_seed(6)).to(DEVICE)
    ids[:, 30:] = ids[:, :30]  # every id twice: HF penalises each id once
    want = RepetitionPenaltyLogitsProcessor(1.3)(ids, logits.clone())
    seen = seen_mask(ids, 700)
    assert torch.equal(logits_pass_reference(logits, seen, 1.3)[0], want)
    assert torch.equal(logits_pass_triton(logits, seen, 1.3)[0], want)
    assert torch.equal(greedy(logits, seen, 1.3), want.argmax(-1))


def _hf_probs(logits, temperature, top_k, top_p):
    scores = logits.clone()
    scores = TemperatureLogitsWarper(temperature)(None, scores)
    if top_k:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(None, scores)
    return torch.softmax(scores, dim=-1)


def _our_probs(logits, temperature, top_k, top_p):
    x, lse, _ = logits_pass_reference(logits, None, temperature=temperature)
    ids, probs = candidates(x, lse, top_k, top_p)
    dense = torch.zeros_like(x).scatter_(1, ids, probs)
    return dense / dense.sum(-1, keepdim=True)


@pytest.mark.parametrize(
    "temperature,top_k,top_p,scale",
    [(0.7, 50, 1.0, 3.0), (0.7, 0, 0.8, 3.0), (1.0, 20, 0.5, 3.0), (1.0, 0, 0.9, 3.0),
     (1.0, 0, 0.9, 0.01)],  # the last is nearly flat: top-p needs the full-sort branch
    ids=["top_k", "top_p", "top_k+top_p", "top_p_peaked", "top_p_flat"],
)
def test_filters_keep_the_same_tokens_with_the_same_probabilities_as_hf(temperature, top_k, top_p, scale):
    logits = _logits(4, 5000, seed=8, scale=scale)
    want = _hf_probs(logits, temperature, top_k, top_p)
    got = _our_probs(logits, temperature, top_k, top_p)
    assert torch.equal(got > 0, want > 0)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("top_p", [0.3, 0.8, 0.95])
def test_top_p_keeps_the_smallest_prefix_reaching_the_mass(top_p):
    x, lse, _ = logits_pass_reference(_logits(3, 4000, seed=9, scale=2.0), None)
    _, probs = candidates(x, lse, 0, top_p)
    for row in probs:
        kept = row[row > 0]
        assert kept.sum() >= top_p - 1e-6
        assert kept.sum() - kept.min() < top_p


def test_never_samples_a_filtered_token():
    row = _logits(1, 2000, seed=10, scale=1.0)
    logits = row.expand(3000, -1).contiguous()
    for config in (SamplingConfig(do_sample=True, top_k=5), SamplingConfig(do_sample=True, top_p=0.5)):
        allowed = _hf_probs(row, 1.0, config.top_k, config.top_p)[0] > 0
        tokens = sample(logits, config, generator=torch.Generator(DEVICE).manual_seed(0))
        assert allowed[tokens].all()
        assert len(set(tokens.tolist())) > 1


def test_draw_frequencies_follow_the_probabilities():
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0]], device=DEVICE).expand(40000, -1)
    config = SamplingConfig(do_sample=True, temperature=0.8)
    tokens = sample(logits, config, generator=torch.Generator(DEVICE).manual_seed(1))
    freq = torch.bincount(tokens.cpu(), minlength=6).double() / tokens.numel()
    want = torch.softmax(logits[0].double().cpu() / 0.8, dim=0)
    assert (freq - want).abs().max() < 0.01


def test_seeded_draws_repeat_and_seeds_differ():
    logits = _logits(8, 3000, seed=11, scale=1.0)
    config = SamplingConfig.uniss()
    seen = seen_mask(torch.arange(40, device=DEVICE).expand(8, -1), 3000)

    def draw(seed):
        return sample(logits, config, seen, torch.Generator(DEVICE).manual_seed(seed))

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


def test_triton_and_reference_paths_draw_the_same_tokens():
    logits = _logits(3, UNISS_VOCAB, seed=12, scale=2.0)
    seen = seen_mask(torch.arange(0, 500, device=DEVICE).expand(3, -1), UNISS_VOCAB)
    config = SamplingConfig.uniss()
    x, lse, _ = logits_pass_triton(logits, seen, config.repetition_penalty, config.temperature)
    fused = sample_processed(x, lse, config, torch.Generator(DEVICE).manual_seed(5))
    rx, rlse, _ = logits_pass_reference(logits, seen, config.repetition_penalty, config.temperature)
    plain = sample_processed(rx, rlse, config, torch.Generator(DEVICE).manual_seed(5))
    assert torch.equal(fused, plain)


def test_greedy_ignores_temperature_and_applies_the_penalty():
    logits = _logits(2, 1000, seed=13)
    top = logits.argmax(-1)
    seen = seen_mask(top[:, None], 1000)
    config = SamplingConfig(temperature=0.3, repetition_penalty=100.0)
    picked = sample(logits, config, seen)
    assert not torch.equal(picked, top)
    assert torch.equal(picked, logits_pass_reference(logits, seen, 100.0)[0].argmax(-1))
    assert torch.equal(sample(logits, SamplingConfig(temperature=0.3)), top)


@pytest.mark.parametrize(
    "kwargs",
    [dict(temperature=0.0), dict(top_p=0.0), dict(top_p=1.5), dict(top_k=-1), dict(repetition_penalty=0.0)],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(DragomanError, match="sampling"):
        SamplingConfig(**kwargs)


def test_uniss_defaults():
    c = SamplingConfig.uniss()
    assert (c.do_sample, c.temperature, c.top_p, c.top_k, c.repetition_penalty) == (True, 0.7, 0.8, 0, 1.1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dispatch_runs_the_fused_pass_on_cuda():
    logits = _logits(4, UNISS_VOCAB, seed=14, dtype=torch.bfloat16)
    seen = seen_mask(torch.arange(100, device="cuda").expand(4, -1), UNISS_VOCAB)
    config = SamplingConfig.uniss()
    gen = torch.Generator("cuda")
    a = sample(logits, config, seen, gen.manual_seed(0))
    rx, rlse, _ = logits_pass_reference(logits, seen, config.repetition_penalty, config.temperature)
    b = sample_processed(rx, rlse, config, gen.manual_seed(0))
    assert torch.equal(a, b)
