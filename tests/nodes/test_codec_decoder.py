"""Decoder back ends on tiny seeded configs: 320 samples per token, batch = alone, input errors,
.nemo round trip, and golden tensors that catch silent numeric drift.

Regenerate the golden file only after an intended change of the networks or the synthesiser:
    python tests/nodes/test_codec_decoder.py
"""
from pathlib import Path

import pytest
import torch

from dragoman.nodes.decoder import Decoder, WaveDecoder
from dragoman.nodes.errors import DragomanError

GOLDEN = Path(__file__).parent / "golden" / "codec_decoder_tiny.pt"
COND = {"dim": 16}
TINY_DECODER = {"net": {"codebook_size": 48, "dim": 16, "token_blocks": 1, "frame_blocks": 1, "n_mels": 24,
                        "conditioning": COND}}
TINY_WAVE = {"net": {"codebook_size": 48, "dim": 16, "prenet_blocks": 1, "channels": 32, "conditioning": COND},
             "discriminator": {"period_channels": 4, "scale_channels": 4, "periods": [2, 3], "scales": 2}}


def tiny(cls, cfg, seed=0):
    torch.manual_seed(seed)
    return cls(cfg)


def inputs(lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    tokens = [torch.randint(0, 48, (n,), generator=gen) for n in lengths]
    speakers = [torch.randint(0, 4096, (32,), generator=gen) for _ in lengths]
    emotions = [torch.randint(0, 1000, (4,), generator=gen) for _ in lengths]
    return tokens, speakers, emotions


BACKENDS = [(Decoder, TINY_DECODER), (WaveDecoder, TINY_WAVE)]


@pytest.fixture(scope="module", params=BACKENDS, ids=["harmonic", "wave"])
def node(request):
    return tiny(*request.param)


def test_output_is_320_samples_per_token(node):
    lengths = [1, 2, 7, 40]
    tokens, speakers, emotions = inputs(lengths)
    audio = node.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"]
    assert [a.shape for a in audio] == [(320 * n,) for n in lengths]
    assert all(bool(torch.isfinite(a).all()) and float(a.abs().max()) <= 1.0 for a in audio)


def test_batched_equals_one_by_one(node):
    """Padding never leaks into an item. Convolutions of different shapes round differently
    (~1e-7), and the harmonic synthesiser integrates F0 into phase over the whole clip, so audio
    is compared at 1e-3 (a leak changes the last frames' spectra by orders of magnitude more)."""
    tokens, speakers, emotions = inputs([3, 40, 17], seed=1)
    batched = node.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"]
    for i, wav in enumerate(batched):
        alone = node.run(semantic_tokens=[tokens[i]], speaker_tokens=[speakers[i]], emotion_tokens=[emotions[i]])["audio"][0]
        assert torch.allclose(wav, alone, atol=1e-3), (i, float((wav - alone).abs().max()))


def test_mel_decoder_frames_batched_equal_one_by_one():
    dec = tiny(Decoder, TINY_DECODER)
    tokens, speakers, emotions = inputs([3, 40, 17], seed=1)
    batch, lengths = torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True), torch.tensor([3, 40, 17])
    with torch.inference_mode():
        together = dec.net(batch, lengths, torch.stack(speakers), torch.stack(emotions))
        for i, n in enumerate(lengths.tolist()):
            alone = dec.net(tokens[i][None], lengths[i : i + 1], speakers[i][None], emotions[i][None])
            assert torch.allclose(together.log_mel[i, :, : 2 * n], alone.log_mel[0], atol=1e-5)
            assert torch.allclose(together.log_f0[i, : 2 * n], alone.log_f0[0], atol=1e-5)
            assert torch.allclose(together.voicing_logit[i, : 2 * n], alone.voicing_logit[0], atol=1e-5)


def test_speaker_and_emotion_tokens_change_the_output(node):
    tokens, speakers, emotions = inputs([60], seed=2)
    base = node.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"][0]
    other_voice = node.run(semantic_tokens=tokens, speaker_tokens=[(speakers[0] + 1) % 4096], emotion_tokens=emotions)["audio"][0]
    no_emotion = node.run(semantic_tokens=tokens, speaker_tokens=speakers)["audio"][0]
    assert not torch.allclose(base, other_voice) and not torch.allclose(base, no_emotion)


@pytest.mark.parametrize("bad,match", [
    ({"semantic_tokens": [torch.zeros(0, dtype=torch.long)]}, "item 0 has no semantic tokens"),
    ({"semantic_tokens": [torch.tensor([1, 48])]}, r"ids must be integers in \[0, 48\)"),
    ({"speaker_tokens": [torch.zeros(31, dtype=torch.long)]}, "speaker tokens: expected 32 per item"),
    ({"speaker_tokens": [torch.full((32,), 4096)]}, r"speaker tokens: ids must lie in \[0, 4096\)"),
    ({"emotion_tokens": [torch.full((4,), -1)]}, "emotion tokens"),
])
def test_bad_tokens_are_one_line_errors(node, bad, match):
    tokens, speakers, emotions = inputs([5])
    call = {"semantic_tokens": tokens, "speaker_tokens": speakers, "emotion_tokens": emotions} | bad
    with pytest.raises(DragomanError, match=match) as err:
        node.run(**call)
    assert "\n" not in str(err.value) and str(err.value).startswith(node.node_name)


def test_nemo_round_trip_decodes_the_same(node, tmp_path):
    path = tmp_path / "dec.nemo"
    node.save_to(str(path))
    restored = type(node).restore_from(path)
    tokens, speakers, emotions = inputs([20], seed=3)
    a = node.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"][0]
    b = restored.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"][0]
    assert torch.equal(a, b)


def deeper(token_blocks, frame_blocks, seed=1):
    cfg = {"net": dict(TINY_DECODER["net"], token_blocks=token_blocks, frame_blocks=frame_blocks)}
    return tiny(Decoder, cfg, seed=seed)


def test_init_from_a_shallower_decoder_keeps_its_output_then_trains():
    """Grown blocks start as identities: the deeper decoder decodes bit for bit what the source
    did, and each grown block still receives gradient, so training can use it."""
    source = tiny(Decoder, TINY_DECODER)
    grown = deeper(2, 3)
    grown.load_weights_from(source)
    tokens, speakers, emotions = inputs([5, 23], seed=2)
    before = source.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"]
    after = grown.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    ids, lengths = torch.stack([t[:5] for t in tokens]), torch.tensor([5, 5])
    pred = grown.net(ids, lengths, torch.stack(speakers), torch.stack(emotions))
    pred.log_mel.square().mean().backward()
    for name in ("token_blocks.1", "frame_blocks.1", "frame_blocks.2"):
        assert float(grown.net.get_submodule(name).scale.grad.abs().sum()) > 0, name


@pytest.mark.parametrize("blocks", [(0, 1), (1, 0)], ids=["fewer-token-blocks", "fewer-frame-blocks"])
def test_init_from_a_deeper_decoder_is_refused(blocks):
    with pytest.raises(DragomanError, match="more than this config"):
        deeper(*blocks).load_weights_from(deeper(1, 1))


@pytest.mark.parametrize("source_adversary", [None, {"channels": 2, "layers": 1}], ids=["plain", "other-discriminator"])
def test_init_from_keeps_the_decoders_output_and_starts_a_fresh_discriminator(source_adversary):
    """Only the decoder's weights are copied: a plain source has no discriminator to give, and
    another run's discriminator (here of another shape) is left behind."""
    source = tiny(Decoder, dict(TINY_DECODER, adversary=source_adversary))
    adversarial = tiny(Decoder, dict(TINY_DECODER, adversary={"channels": 4, "layers": 2}), seed=3)
    fresh = {k: v.clone() for k, v in adversarial.discriminator.state_dict().items()}
    adversarial.load_weights_from(source)
    assert all(torch.equal(fresh[k], v) for k, v in adversarial.discriminator.state_dict().items())
    tokens, speakers, emotions = inputs([9, 4], seed=4)
    before = source.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"]
    after = adversarial.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"]
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_saved_adversarial_decoder_holds_no_discriminator_and_decodes_the_same(tmp_path):
    from dragoman.nodes.distributed import _save

    node = tiny(Decoder, dict(TINY_DECODER, adversary={"channels": 4, "layers": 2}))
    _save(node, tmp_path / "dec.nemo")
    restored = Decoder.restore_from(tmp_path / "dec.nemo")
    assert restored.adversary is None and restored.cfg.adversary is None
    assert not any(k.startswith("discriminator.") for k in restored.state_dict())
    tokens, speakers, emotions = inputs([6, 13], seed=5)
    a = node.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"]
    b = restored.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("bad, match", [({"adversarial_weight": -1.0}, "must be >= 0"), ({"layers": 0}, "must be >= 1"),
                                        ({"betas": [0.5, 1.5]}, "betas"), ({"lr": 0.0}, "lr must be")])
def test_bad_adversary_settings_are_one_line_errors(bad, match):
    with pytest.raises(DragomanError, match=f"model.adversary: .*{match}") as err:
        Decoder(dict(TINY_DECODER, adversary=bad))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("win_length", [0, 100, 4096])
def test_bad_window_is_a_one_line_error(win_length):
    with pytest.raises(DragomanError, match=f"decoder: model.win_length: win_length {win_length} must be in \\[160, 1024\\]"):
        Decoder(dict(TINY_DECODER, win_length=win_length))


def test_envelope_discriminator_ignores_what_lies_past_an_items_length():
    """Padding is set to one constant in real and generated envelopes alike, so two envelopes
    that differ only past the item's length look the same to the discriminator."""
    from dragoman.nodes.modules.codec_conditioning import frame_mask
    from dragoman.nodes.modules.envelope_gan import EnvelopeAdversaryConfig, EnvelopeDiscriminator, pad_frames

    torch.manual_seed(0)
    disc = EnvelopeDiscriminator(EnvelopeAdversaryConfig(channels=4, layers=2))
    a = torch.randn(2, 24, 40) - 8
    b = a.clone()
    b[0, :, 30:] = 5.0
    b[1, :, 17:] = -3.0
    mask = frame_mask(torch.tensor([30, 17]), 40)
    assert torch.equal(disc(pad_frames(a, mask))[0], disc(pad_frames(b, mask))[0])
    assert not torch.equal(disc(a)[0], disc(b)[0])


def test_init_from_another_width_is_refused():
    other = tiny(Decoder, {"net": dict(TINY_DECODER["net"], n_mels=20)})
    with pytest.raises(DragomanError, match="size mismatch"):
        deeper(2, 2).load_weights_from(other)


def golden_outputs() -> dict[str, torch.Tensor]:
    """What the golden file holds: tiny seeded networks on fixed inputs (mel frames and a slice
    of audio from the harmonic decoder; a slice of audio from the wave generator)."""
    tokens, speakers, emotions = inputs([25], seed=4)
    dec = tiny(Decoder, TINY_DECODER)
    with torch.inference_mode():
        frames = dec.net(tokens[0][None], torch.tensor([25]), speakers[0][None], emotions[0][None])
    harmonic = dec.run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"][0]
    wave = tiny(WaveDecoder, TINY_WAVE).run(semantic_tokens=tokens, speaker_tokens=speakers, emotion_tokens=emotions)["audio"][0]
    return {"log_mel": frames.log_mel[0, :, :8].clone(), "log_f0": frames.log_f0[0].clone(),
            "voicing_logit": frames.voicing_logit[0].clone(), "harmonic_audio": harmonic[2000:2400].clone(),
            "wave_audio": wave[2000:2400].clone()}


def test_golden_tensors_of_tiny_seeded_decoders():
    expected = torch.load(GOLDEN, weights_only=True)
    actual = golden_outputs()
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert torch.allclose(actual[key], value, rtol=1e-4, atol=1e-5), key


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    torch.save(golden_outputs(), GOLDEN)
