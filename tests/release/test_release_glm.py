"""GLM-4-Voice's WhisperVQ tokenizer loaded from the tiny release: 12.5 Hz tokens, block-causal
attention, the strict load of the released tensor set, parity of a layer with transformers' Whisper."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from dragoman.nodes.errors import CheckpointError
from dragoman.nodes.release.glm_tokenizer import block_causal_mask, release_state
from dragoman.nodes.release.uniss_nodes import UniSSContentTokenizer

from .tiny_release import GLM_CONFIG, GLM_LAYERS


def tone(seconds: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * 16000)) / 16000
    return 0.3 * torch.sin(2 * torch.pi * 230 * t) + 0.03 * torch.randn(t.shape, generator=g)


@pytest.mark.parametrize("samples", [16_000, 17_000, 1_280, 640_000])
def test_release_content_tokens_at_12_5_hz(release_nodes, samples):
    ids = release_nodes["content"].run(audio=[tone(samples / 16000)])["content_tokens"][0]
    # One token per 1280 samples (hop 160 x conv stride 2 x pool 4), padded tail masked out;
    # 40 s run as a 30 s piece (375 tokens) and a 10 s piece (125).
    assert ids.shape == (math.ceil(samples / 1280),)
    assert ids.dtype == torch.long and int(ids.min()) >= 0 and int(ids.max()) < 16384


def test_release_whisper_vq_builds_quantize_position_layers_not_encoder_layers(release_nodes):
    assert GLM_CONFIG["encoder_layers"] == 32
    assert len(release_nodes["content"].net.layers) == GLM_LAYERS


def test_release_attention_is_block_causal_over_4_s_blocks(release_nodes):
    net = release_nodes["content"].net
    g = torch.Generator().manual_seed(1)
    features = torch.randn(1, net.conv1.in_channels, 800, generator=g)   # 8 s of mel frames
    changed = features.clone()
    changed[:, :, 400:] = torch.randn(1, net.conv1.in_channels, 400, generator=g)   # everything after 4 s
    mask = torch.ones(1, 800, dtype=torch.long)
    with torch.inference_mode():
        a, keep = net(features, mask)
        b, _ = net(changed, mask)
    assert a.shape == (1, 100) and bool(keep.all())
    assert torch.equal(a[:, :50], b[:, :50])      # block 0 (200 frames at 50 Hz = 50 tokens) sees no later block
    assert not torch.equal(a[:, 50:], b[:, 50:])


def test_release_block_mask_shape_and_padding():
    valid = torch.tensor([[True] * 5 + [False] * 3])
    mask = block_causal_mask(valid, 4)[0, 0]
    assert mask[0].tolist() == [True] * 4 + [False] * 4          # own block, future included
    assert mask[5].tolist() == [True] * 5 + [False] * 3          # blocks 0 and 1, padding excluded
    assert block_causal_mask(valid, None)[0, 0, 0].tolist() == [True] * 5 + [False] * 3


def test_release_whisper_layer_matches_transformers(release_nodes):
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoderLayer

    ours = release_nodes["content"].net.layers[0]
    config = WhisperConfig(d_model=GLM_CONFIG["d_model"], encoder_attention_heads=GLM_CONFIG["encoder_attention_heads"],
                           encoder_ffn_dim=GLM_CONFIG["encoder_ffn_dim"], activation_function="gelu")
    config._attn_implementation = "sdpa"
    reference = WhisperEncoderLayer(config).eval()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 37, GLM_CONFIG["d_model"], generator=torch.Generator().manual_seed(2))
    allowed = block_causal_mask(torch.ones(2, 37, dtype=torch.bool), 10)
    additive = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
    with torch.inference_mode():
        assert torch.allclose(ours(x, allowed), reference(x, additive), atol=1e-5)


def test_release_strict_load_needs_the_ema_buffers(release_root, partial_release, tmp_path):
    state = load_file(str(release_root / "glm4_tokenizer/model.safetensors"))
    del state["ema_count"]
    path = tmp_path / "glm.safetensors"
    save_file(state, str(path), metadata={"format": "pt"})
    root = partial_release(replace={"glm4_tokenizer/model.safetensors": path.read_bytes()})
    with pytest.raises(CheckpointError, match=r"missing 1 tensor\(s\): ema_count"):
        UniSSContentTokenizer.from_release(root)


def test_release_prefixed_whisper_vq_keys_load_like_the_official_loader(release_root):
    state = load_file(str(release_root / "glm4_tokenizer/model.safetensors"))
    prefixed = {f"model.encoder.{k}": v for k, v in state.items()}
    prefixed["model.encoder.layers.5.fc1.weight"] = torch.zeros(1)      # a layer past the quantiser
    prefixed["model.encoder.layer_norm.weight"] = torch.zeros(1)        # the final norm it never built
    prefixed["model.decoder.embed_tokens.weight"] = torch.zeros(1)
    assert release_state(prefixed, GLM_LAYERS).keys() == state.keys()
    unprefixed = release_state(state, GLM_LAYERS)
    assert unprefixed.keys() == state.keys() and all(unprefixed[k] is state[k] for k in state)
