"""BiCodec's semantic path and decoder loaded from the tiny release: 50 Hz tokens, 320 samples per
token, the wav2vec2 features against transformers' own loader, weight-norm folding against torch's."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dragoman.nodes.errors import DragomanError
from dragoman.nodes.release.bicodec_semantic import normalize_utterance
from dragoman.nodes.release.weights import fold_weight_norm


def speech_like(seconds: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * 16000)) / 16000
    return 0.25 * torch.sin(2 * torch.pi * 180 * t) * (1 + torch.sin(2 * torch.pi * 3 * t)) + 0.01 * torch.randn(t.shape, generator=g)


@pytest.mark.parametrize("samples, frames", [(16_000, 49), (32_000, 99), (400, 1), (16_320, 50)])
def test_release_semantic_tokens_at_50_hz(release_nodes, samples, frames):
    ids = release_nodes["semantic"].run(audio=[speech_like(samples / 16000)])["semantic_tokens"][0]
    # wav2vec2's conv stack: 400-sample field, 320-sample hop -> floor((N - 400) / 320) + 1 frames.
    assert ids.shape == (frames,) and ids.dtype == torch.long
    assert int(ids.min()) >= 0 and int(ids.max()) < 8192


def test_release_semantic_refuses_audio_shorter_than_one_frame(release_nodes):
    with pytest.raises(DragomanError, match="too short"):
        release_nodes["semantic"].run(audio=[torch.zeros(399)])


def test_release_wav2vec2_features_equal_transformers_loading_the_same_folder(release_root, release_nodes):
    """transformers' own loader (old weight-norm names, pretraining heads dropped) and the
    `hidden_states` tuple must give what dragoman's loader and layer loop give."""
    from transformers import Wav2Vec2Model

    wav = normalize_utterance(speech_like(1.0, seed=1))[None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = Wav2Vec2Model.from_pretrained(str(release_root / "bicodec/wav2vec2-large-xlsr-53")).eval()
    with torch.inference_mode():
        hidden = reference(wav, output_hidden_states=True).hidden_states
        expected = (hidden[11] + hidden[14] + hidden[16]) / 3
        got = release_nodes["semantic"].net.wav2vec2(wav)
    assert torch.allclose(got, expected, atol=1e-5)


def test_release_factorised_vq_is_cosine_nearest_and_decodes_unnormalised_rows(release_nodes):
    vq = release_nodes["semantic"].net.quantizer
    z = torch.randn(2, vq.in_project.in_channels, 7, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        ids = vq.tokenize(z)
        projected = vq.in_project(z).transpose(1, 2)
        cosine = F.cosine_similarity(projected[:, :, None, :], vq.codebook.weight[None, None], dim=-1)
        assert torch.equal(ids, cosine.argmax(-1))
        euclid = torch.cdist(projected, vq.codebook.weight[None].expand(2, -1, -1)).argmin(-1)
        assert not torch.equal(ids, euclid)   # the codebook rows' norms vary: the metric matters
        rows = vq.codebook.weight[ids].transpose(1, 2)
        assert torch.allclose(vq.detokenize(ids), vq.out_project(rows), atol=1e-6)
        assert not torch.allclose(vq.detokenize(ids), vq.out_project(F.normalize(rows, dim=1)), atol=1e-3)


@pytest.mark.parametrize("make, dim, cin", [
    (lambda: nn.Conv1d(6, 4, 5), 0, 6),                              # BiCodec convs: g [out,1,1]
    (lambda: nn.ConvTranspose1d(6, 4, 8, stride=4), 0, 6),           # BiCodec transposed convs: g [in,1,1]
    (lambda: nn.Conv1d(8, 8, 6, padding=3, groups=2), 2, 8),         # wav2vec2 positional conv: g [1,1,k]
])
def test_release_weight_norm_folding_matches_torch_weight_norm(make, dim, cin):
    torch.manual_seed(0)
    module = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        normed = torch.nn.utils.weight_norm(module, dim=dim)   # the old API the release was saved with
    with torch.no_grad():
        normed.weight_g.mul_(torch.rand_like(normed.weight_g) + 0.5)
    x = torch.randn(2, cin, 11)
    expected = normed(x)
    state = {f"m.{k}": v.detach() for k, v in normed.state_dict().items()}
    folded = fold_weight_norm(state, "test")
    assert set(folded) == {"m.weight", "m.bias"}
    plain = make()
    plain.load_state_dict({"weight": folded["m.weight"], "bias": folded["m.bias"]})
    assert torch.allclose(plain(x), expected, atol=1e-6)


def test_release_decoder_gives_320_samples_per_token(release_nodes):
    speaker = release_nodes["speaker"].run(audio=[speech_like(2.0, seed=5)])["speaker_tokens"][0]
    semantic = release_nodes["semantic"].run(audio=[speech_like(1.5, seed=6)])["semantic_tokens"][0]
    out = release_nodes["decoder"].run(semantic_tokens=[semantic, semantic[:9]], speaker_tokens=[speaker, speaker])["audio"]
    assert [w.shape[0] for w in out] == [320 * semantic.shape[0], 320 * 9]
    assert all(w.dtype == torch.float32 and float(w.abs().max()) <= 1.0 and float(w.std()) > 0 for w in out)


@pytest.mark.parametrize("semantic, speaker, match", [
    (torch.tensor([], dtype=torch.long), torch.zeros(32, dtype=torch.long), "no semantic tokens"),
    (torch.tensor([1, 8192]), torch.zeros(32, dtype=torch.long), r"semantic token ids must lie in \[0, 8192\)"),
    (torch.tensor([1, 2]), torch.zeros(31, dtype=torch.long), "expected 32 speaker tokens"),
    (torch.tensor([1, 2]), torch.full((32,), 4096), r"speaker token ids must lie in \[0, 4096\)"),
])
def test_release_decoder_refuses_bad_tokens(release_nodes, semantic, speaker, match):
    with pytest.raises(DragomanError, match=match):
        release_nodes["decoder"].run(semantic_tokens=[semantic], speaker_tokens=[speaker])


def test_release_decoder_nemo_round_trip(release_nodes, tmp_path):
    """A stage loaded from the release saves as .nemo and restores without the directory."""
    from dragoman.nodes.release.uniss_nodes import UniSSDecoder

    node = release_nodes["decoder"]
    path = tmp_path / "uniss_decoder.nemo"
    node.save_to(str(path))
    restored = UniSSDecoder.restore_from(path).place("cpu")
    semantic, speaker = torch.arange(0, 8192, 701), torch.arange(0, 4096, 128)
    a = node.run(semantic_tokens=[semantic], speaker_tokens=[speaker])["audio"][0]
    b = restored.run(semantic_tokens=[semantic], speaker_tokens=[speaker])["audio"][0]
    assert torch.allclose(a, b, atol=1e-6)   # same weights (loaded by assignment vs copied): float-level equal
    assert torch.allclose(node.net.decoder.model[0].weight, restored.net.decoder.model[0].weight, atol=0)
