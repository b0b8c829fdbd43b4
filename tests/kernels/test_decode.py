"""Static-cache decode loop vs HF `generate` on a tiny random Qwen2 (greedy equality, eos, sampling)."""
import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from dragoman.kernels import decode_attention, rmsnorm, rotary, sampling, swiglu
from dragoman.kernels.decode import StaticDecoder
from dragoman.kernels.qwen2_forward import StaticQwen2
from dragoman.kernels.sampling import SamplingConfig
from dragoman.nodes.errors import DragomanError

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
VOCAB = 300


@pytest.fixture(scope="module")
def model():
    config = Qwen2Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        # A wider init than the default 0.02 spreads the logits, so greedy choices are not
        # decided by last-bit differences between two correct implementations.
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    return Qwen2ForCausalLM(config).to(DEVICE).eval()


def _prompt(batch, length, seed):
    return torch.randint(1, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed)).to(DEVICE)


def _hf(model, ids, **kwargs):
    kwargs.setdefault("eos_token_id", None)
    kwargs.setdefault("pad_token_id", 0)
    with torch.no_grad():
        return model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, **kwargs)


@pytest.mark.parametrize("batch", [1, 2])
def test_greedy_equals_hf_generate(model, batch):
    ids = _prompt(batch, 9, seed=batch)
    ours = StaticDecoder(model).generate(ids, max_new_tokens=40)
    assert ours.shape == (batch, 49)
    assert torch.equal(ours, _hf(model, ids, max_new_tokens=40))


def test_greedy_with_repetition_penalty_equals_hf(model):
    ids = _prompt(2, 12, seed=3)
    ours = StaticDecoder(model).generate(ids, 30, sampling=SamplingConfig(repetition_penalty=1.3))
    assert torch.equal(ours, _hf(model, ids, max_new_tokens=30, repetition_penalty=1.3))


def test_eos_ids_stop_each_row_like_hf(model):
    ids = _prompt(2, 8, seed=4)
    free = _hf(model, ids, max_new_tokens=30)
    eos = (int(free[0, 8 + 5]), int(free[1, 8 + 12]))  # row 0 stops by step 6, row 1 by step 13
    decoder = StaticDecoder(model)
    ours = decoder.generate(ids, 30, eos_token_ids=eos, pad_token_id=7)
    want = _hf(model, ids, max_new_tokens=30, eos_token_id=list(eos), pad_token_id=7)
    assert torch.equal(ours, want)
    assert ours.shape[1] < 8 + 30
    # The default pad is the first eos id, as in HF.
    want = _hf(model, ids, max_new_tokens=30, eos_token_id=list(eos), pad_token_id=eos[0])
    assert torch.equal(decoder.generate(ids, 30, eos_token_ids=eos), want)


def test_cache_is_reallocated_for_longer_or_wider_requests(model):
    decoder = StaticDecoder(model)
    short = _prompt(1, 5, seed=5)
    assert torch.equal(decoder.generate(short, 4), _hf(model, short, max_new_tokens=4))
    long = _prompt(3, 250, seed=6)  # 250 + 10 tokens outgrow the first 256-token cache
    assert torch.equal(decoder.generate(long, 10), _hf(model, long, max_new_tokens=10))
    assert decoder.model.capacity >= 260 and decoder.model.batch == 3


def test_top_k_one_sampling_is_greedy(model):
    ids = _prompt(2, 6, seed=7)
    config = SamplingConfig(do_sample=True, temperature=0.8, top_k=1)
    ours = StaticDecoder(model).generate(ids, 20, sampling=config, seed=1)
    assert torch.equal(ours, _hf(model, ids, max_new_tokens=20))


def test_sampling_is_seeded(model):
    ids = _prompt(1, 6, seed=8)
    decoder = StaticDecoder(model)
    config = SamplingConfig(do_sample=True, temperature=1.5)
    first = decoder.generate(ids, 30, sampling=config, seed=11)
    assert torch.equal(first, decoder.generate(ids, 30, sampling=config, seed=11))
    assert not torch.equal(first, decoder.generate(ids, 30, sampling=config, seed=12))


def test_sampled_tokens_stay_in_the_models_top_k(model):
    ids = _prompt(2, 6, seed=9)
    config = SamplingConfig(do_sample=True, temperature=2.0, top_k=3)
    out = StaticDecoder(model).generate(ids, 25, sampling=config, seed=2)
    with torch.no_grad():
        logits = model(out).logits[:, 5:-1]  # the logits that chose each generated token
    top3 = logits.topk(3, dim=-1).indices
    assert (top3 == out[:, 6:, None]).any(-1).all()
    assert not torch.equal(out, _hf(model, ids, max_new_tokens=25))  # it did sample


@pytest.fixture
def triton_everywhere(monkeypatch):
    """Route every dispatch to its Triton launcher, also for CPU tensors (Triton's interpreter):
    the decode path a GPU takes, minus the CUDA graph, checked on a machine without one."""
    for module in (rmsnorm, rotary, swiglu, decode_attention, sampling):
        monkeypatch.setattr(module, "use_triton", lambda *tensors: True)
    monkeypatch.setattr(decode_attention, "default_num_splits", lambda *args: 3)


def test_step_through_triton_kernels_matches_torch_step(model, request):
    static = StaticQwen2(model)
    static.allocate(2, 64)
    static.prefill(_prompt(2, 10, seed=10))
    tokens = torch.tensor([3, 250], device=DEVICE)
    position = torch.tensor([10], device=DEVICE)
    want = static.step(tokens, position)
    request.getfixturevalue("triton_everywhere")
    got = static.step(tokens, position)  # rewrites cache slot 10 with the same keys/values
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_output_ids_give_those_columns_of_the_full_logits(model):
    rows = torch.tensor([3, 0, 17, 299, 42], device=DEVICE)
    full, part = StaticQwen2(model), StaticQwen2(model, output_ids=rows)
    assert part.vocab_size == 5 and full.vocab_size == VOCAB
    prompt, more = _prompt(2, 9, seed=30), _prompt(2, 4, seed=31)
    for static in (full, part):
        static.allocate(2, 64)
    torch.testing.assert_close(part.prefill(prompt), full.prefill(prompt)[:, rows])
    position = torch.tensor([9], device=DEVICE)
    torch.testing.assert_close(part.step(more[:, 0], position), full.step(more[:, 0], position)[:, rows])
    torch.testing.assert_close(part.extend(more[:, 1:], 10), full.extend(more[:, 1:], 10)[:, rows])


@pytest.mark.parametrize("run", [1, 5])
def test_extending_the_cache_by_a_run_equals_stepping_through_it(model, run):
    prompt, more = _prompt(2, 9, seed=20), _prompt(2, run + 3, seed=21)
    stepped = StaticQwen2(model)
    stepped.allocate(2, 64)
    stepped.prefill(prompt)
    for j in range(more.shape[1]):
        want = stepped.step(more[:, j], torch.tensor([9 + j], device=DEVICE))
    extended = StaticQwen2(model)
    extended.allocate(2, 64)
    extended.prefill(prompt)
    extended.extend(more[:, :3], 9)
    got = extended.extend(more[:, 3:], 12)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(extended.k_cache[:, :, :, :12 + run], stepped.k_cache[:, :, :, :12 + run], atol=1e-5, rtol=1e-4)


def test_generate_through_triton_kernels(model, request):
    ids = _prompt(2, 7, seed=13)
    greedy = SamplingConfig(repetition_penalty=1.3)
    sampled = SamplingConfig(do_sample=True, temperature=1.3, top_p=0.9, repetition_penalty=1.1)
    plain = StaticDecoder(model).generate(ids, 6, sampling=sampled, seed=4)
    request.getfixturevalue("triton_everywhere")
    decoder = StaticDecoder(model, cuda_graph=False)
    want = _hf(model, ids, max_new_tokens=6, repetition_penalty=1.3)
    assert torch.equal(decoder.generate(ids, 6, sampling=greedy), want)
    assert torch.equal(decoder.generate(ids, 6, sampling=sampled, seed=4), plain)


def test_rejects_bad_requests(model):
    decoder = StaticDecoder(model)
    with pytest.raises(DragomanError, match="max_new_tokens"):
        decoder.generate(_prompt(1, 4, seed=0), 0)
    with pytest.raises(DragomanError, match="vocabulary"):
        decoder.generate(torch.tensor([[1, VOCAB]], device=DEVICE), 3)
    with pytest.raises(DragomanError, match="non-empty"):
        decoder.generate(torch.zeros(1, 0, dtype=torch.long, device=DEVICE), 3)
    with pytest.raises(DragomanError, match="Qwen2ForCausalLM"):
        StaticDecoder(torch.nn.Linear(2, 2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_greedy_equals_hf_generate(model):
    ids = _prompt(2, 16, seed=12)
    decoder = StaticDecoder(model, cuda_graph=True)
    assert decoder.use_graph
    ours = decoder.generate(ids, 64, sampling=SamplingConfig(repetition_penalty=1.1))
    assert torch.equal(ours, _hf(model, ids, max_new_tokens=64, repetition_penalty=1.1))
