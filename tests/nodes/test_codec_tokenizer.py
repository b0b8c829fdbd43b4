"""SemanticTokenizer on tiny seeded configs: 50 Hz for any length, batch = alone, .nemo round
trip, and the copied content encoder equal to the ContentTokenizer it came from."""
import pytest
import torch

from dragoman.nodes.errors import AudioError, GraphError
from dragoman.nodes.semantic_tokenizer import SemanticTokenizer

TINY_CONTENT = {"dim": 32, "heads": 2, "encoder_layers": 1, "kernel_size": 7, "vocab_size": 8}
TINY_NET = {"dim": 16, "blocks": 1, "recon_blocks": 1, "kernel_size": 3, "fsq_levels": [4, 4, 3]}


def tiny_tokenizer(seed: int = 0) -> SemanticTokenizer:
    torch.manual_seed(seed)
    return SemanticTokenizer({"content_net": TINY_CONTENT, "net": TINY_NET})


def speechlike(n: int, seed: int) -> torch.Tensor:
    """A gliding harmonic tone with noise bursts: voiced and unvoiced stretches."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    f0 = 120 + 40 * torch.sin(2 * torch.pi * 1.5 * t)
    phase = 2 * torch.pi * torch.cumsum(f0, 0) / 16000
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 12)) * (torch.sin(2 * torch.pi * 2 * t) > -0.3)
    return 0.2 * voiced + 0.02 * torch.randn(n, generator=gen)


@pytest.fixture(scope="module")
def node():
    return tiny_tokenizer()


@pytest.mark.parametrize("n", [1, 100, 319, 320, 321, 399, 400, 641, 8000, 16000, 16001, 48123])
def test_token_rate_is_50_hz_for_any_length(node, n):
    tokens = node.run(audio=[speechlike(n, n)])["semantic_tokens"][0]
    assert tokens.shape == (-(-n // 320),)
    assert tokens.dtype == torch.long
    assert int(tokens.min()) >= 0 and int(tokens.max()) < node.codebook_size == 48


def test_batched_equals_one_by_one(node):
    wavs = [speechlike(n, i) for i, n in enumerate([350, 16000, 7001, 12345])]
    batched = node.run(audio=wavs)["semantic_tokens"]
    for wav, tokens in zip(wavs, batched):
        assert torch.equal(node.run(audio=[wav])["semantic_tokens"][0], tokens)


def test_tokens_follow_the_audio(node):
    """Different audio gives different tokens (a constant output would pass the shape tests)."""
    a = node.run(audio=[speechlike(16000, 1)])["semantic_tokens"][0]
    b = node.run(audio=[speechlike(16000, 1) * 0.0 + 0.05 * torch.randn(16000)])["semantic_tokens"][0]
    assert len(set(a.tolist())) > 1
    assert not torch.equal(a, b)


def test_nemo_round_trip_gives_the_same_tokens(node, tmp_path):
    path = tmp_path / "sem.nemo"
    node.save_to(str(path))
    restored = SemanticTokenizer.restore_from(path)
    wav = speechlike(9000, 3)
    assert torch.equal(restored.run(audio=[wav])["semantic_tokens"][0], node.run(audio=[wav])["semantic_tokens"][0])
    assert "head" not in dict(restored.content.named_children()) or restored.content.head is None


def test_content_encoder_is_copied_from_a_content_tokenizer(tmp_path):
    from dragoman.nodes.content_tokenizer import ContentTokenizer

    torch.manual_seed(1)
    content = ContentTokenizer({"net": TINY_CONTENT, "vocab": ["<blank>", " ", "a", "b", "c"]})
    path = tmp_path / "content.nemo"
    content.save_to(str(path))
    node = SemanticTokenizer({"content_init": str(path), "net": TINY_NET})
    assert node.cfg.content_init is None and node.cfg.content_source == str(path)
    wav = speechlike(16000, 5)
    expected = content.encoder_features([wav])[0]  # [25 Hz frames, dim]
    ours = node.features([wav])[0][: TINY_CONTENT["dim"]]  # [dim, 50 Hz tokens]
    assert torch.allclose(ours[:, ::2].T, expected[: ours[:, ::2].shape[1]], atol=1e-5)
    assert torch.allclose(ours[:, 1::2].T, expected[: ours[:, 1::2].shape[1]], atol=1e-5)


def test_missing_content_config_and_bad_audio_are_one_line_errors(node):
    with pytest.raises(GraphError, match="content_net"):
        SemanticTokenizer({"net": TINY_NET})
    with pytest.raises(AudioError, match="item 0 has shape"):
        node.run(audio=[torch.zeros(2, 800)])
    with pytest.raises(AudioError, match="NaN"):
        node.run(audio=[torch.full((800,), float("nan"))])
