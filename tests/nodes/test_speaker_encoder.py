"""SpeakerEncoder on tiny configs: 32 tokens for any length (6 s reference, tiled or cut),
batched = one-by-one, .nemo round trip, tokens -> d-vector, learning, margin loss, EER, errors."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from dragoman.nodes.errors import AudioError, DragomanError, GraphError
from dragoman.nodes.modules.margin_softmax import AdditiveAngularMargin
from dragoman.nodes.modules.speaker_net import cut_or_tile
from dragoman.nodes.node_eval import equal_error_rate, pair_statistics
from dragoman.nodes.speaker_encoder import SpeakerEncoder

TINY = {"net": {"channels": 16, "dilations": [2], "res2_scale": 2, "se_bottleneck": 8, "pooled_channels": 24,
                "attention_hidden": 8, "embedding_dim": 16, "latent_dim": 16, "perceiver_heads": 2,
                "perceiver_layers": 1, "ref_seconds": 1.0}}


def voice(f0: float, tilt: float, seconds: float, seed: int) -> np.ndarray:
    """A toy voice: harmonics of f0 with a speaker-specific spectral tilt, wobbling pitch."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(1, 3) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / 16000
    wav = sum(tilt ** k * np.sin(k * phase) for k in range(1, 8))
    return (0.2 * wav / np.abs(wav).max() + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def node():
    torch.manual_seed(0)
    return SpeakerEncoder(TINY).eval()


def test_32_tokens_for_any_length_and_the_reference_is_cut_or_tiled(node):
    short, long = torch.randn(8000) * 0.1, torch.randn(40000) * 0.1
    out = node.run(audio=[short, long])
    assert [t.shape for t in out["speaker_tokens"]] == [(32,), (32,)]
    assert all(0 <= int(t.min()) and int(t.max()) < 4096 for t in out["speaker_tokens"])
    assert out["speaker_embedding"][0].shape == (16,)
    # 1 s reference: the long clip's first second gives the same tokens; the short one is tiled
    assert torch.equal(node.run(audio=[long[:16000]])["speaker_tokens"][0], out["speaker_tokens"][1])
    assert torch.equal(node.run(audio=[short.repeat(2)])["speaker_tokens"][0], out["speaker_tokens"][0])
    assert torch.equal(cut_or_tile(torch.arange(3.0), 7), torch.tensor([0.0, 1, 2, 0, 1, 2, 0]))
    assert torch.equal(cut_or_tile(torch.arange(5.0), 3, start=1), torch.tensor([1.0, 2, 3]))


def test_batched_equals_one_by_one(node):
    wavs = [torch.randn(n) * 0.1 for n in (16000, 6000, 23000)]
    batch = node.run(audio=wavs)
    for i, w in enumerate(wavs):
        alone = node.run(audio=[w])
        assert torch.equal(alone["speaker_tokens"][0], batch["speaker_tokens"][i])
        torch.testing.assert_close(alone["speaker_embedding"][0], batch["speaker_embedding"][i], atol=1e-5, rtol=1e-5)


def test_nemo_round_trip_and_tokens_to_dvector(node, tmp_path):
    wavs = [torch.randn(12000) * 0.1, torch.randn(20000) * 0.1]
    out = node.run(audio=wavs)
    from_tokens = node.tokens_to_dvector(out["speaker_tokens"])
    torch.testing.assert_close(from_tokens, node.embed(wavs, from_tokens=True))
    node.save_to(str(tmp_path / "spk.nemo"))
    restored = SpeakerEncoder.restore_from(tmp_path / "spk.nemo")
    again = restored.run(audio=wavs)
    assert all(torch.equal(a, b) for a, b in zip(again["speaker_tokens"], out["speaker_tokens"]))
    torch.testing.assert_close(restored.tokens_to_dvector(torch.stack(out["speaker_tokens"])), from_tokens)
    assert restored.cfg.net.ref_seconds == 1.0


@pytest.fixture(scope="module")
def speakers_manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("spk")
    rows = []
    for s, (f0, tilt) in enumerate([(110, 0.9), (220, 0.5), (160, 0.7)]):
        for i in range(6):
            path = root / f"s{s}_{i}.wav"
            sf.write(path, voice(f0, tilt, 0.8 + 0.1 * i, seed=10 * s + i), 16000)
            rows.append({"audio_filepath": str(path), "duration": 0.8 + 0.1 * i, "speaker": f"s{s}",
                         "lang": "zh" if i % 2 else "en"})
    path = root / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_training_steps_separate_the_speakers(speakers_manifest):
    torch.manual_seed(0)
    cfg = dict(TINY, train_ds={"manifest": str(speakers_manifest), "batch_size": 18}, speed_factors=[1.0, 1.1],
               train_seconds=0.5)
    node = SpeakerEncoder(cfg)
    assert list(node.cfg.speakers) == ["s0", "s1", "s2"]
    wav, lengths, labels = next(iter(node._train_dl))
    wavs = [w[:n] for w, n in zip(wav, lengths)]
    speakers = [f"s{int(i)}" for i in labels]
    before = pair_statistics(node.embed(wavs), speakers, ["en"] * len(wavs))
    optimizer = torch.optim.AdamW(node.parameters(), lr=5e-3)
    losses = []
    for _ in range(25):
        node.train()
        loss, _ = node._losses(*node._training_clips(wav, lengths, labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    after = pair_statistics(node.embed(wavs), speakers, ["en"] * len(wavs))
    assert after["eer"] < before["eer"] and after["eer"] <= 0.1, (before, after)
    assert after["same_spk_cos"] - after["diff_spk_cos"] > before["same_spk_cos"] - before["diff_spk_cos"] + 0.2


def test_margin_makes_the_true_class_harder():
    torch.manual_seed(0)
    head = AdditiveAngularMargin(8, 3, margin=0.3, scale=10.0)
    emb, labels = torch.randn(16, 8), torch.randint(0, 3, (16,))
    with torch.no_grad():
        plain = torch.nn.functional.cross_entropy(head.cosines(emb) * 10.0, labels)
        loss, acc = head(emb, labels)
    assert float(loss) > float(plain)
    assert float(acc) == float((head.cosines(emb).argmax(-1) == labels).float().mean())


def test_equal_error_rate_on_hand_made_scores():
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    assert equal_error_rate(np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]), same) == 0.0
    assert equal_error_rate(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]), same) == 1.0
    # one impostor above one target: 1 error of 4 on each side
    assert equal_error_rate(np.array([0.9, 0.8, 0.7, 0.3, 0.5, 0.2, 0.1, 0.0]), same) == pytest.approx(0.25)


def test_bad_input_is_a_one_line_error(node):
    with pytest.raises(AudioError, match="silent"):
        node.run(audio=[torch.zeros(16000)])
    with pytest.raises(AudioError, match="too short"):
        node.run(audio=[torch.randn(1000)])
    with pytest.raises(AudioError, match="expects 16000 Hz"):
        node.embed([torch.randn(16000)], sample_rate=22050)
    with pytest.raises(DragomanError, match="bad speaker token ids"):
        node.tokens_to_dvector(torch.zeros(1, 31, dtype=torch.long))
    with pytest.raises(DragomanError, match="bad speaker token ids"):
        node.tokens_to_dvector(torch.full((1, 32), 5000))
    with pytest.raises(GraphError, match="speed_factors must start with 1.0"):
        SpeakerEncoder(dict(TINY, speed_factors=[0.9, 1.0]))
