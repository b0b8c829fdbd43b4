"""The trainable-node contract on a real node (EmotionTokenizer, tiny config): .nemo round trip,
plain Lightning training, batched = one-by-one, safe and clear restore errors."""
import json
import tarfile

import numpy as np
import pytest
import soundfile as sf
import torch

from dragoman.nodes.emotion_tokenizer import EmotionTokenizer
from dragoman.nodes.errors import CheckpointError

TINY = {"net": {"channels": 16, "layers": 2, "num_tokens": 2, "fsq_levels": [5, 5, 5]}}


def tone(f0, seconds, amp, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    vibrato = 1 + 0.03 * np.sin(2 * np.pi * 5 * t)
    wav = sum(amp / k * np.sin(2 * np.pi * k * f0 * vibrato * t) for k in range(1, 5))
    return (wav + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """Four 'emotions' that differ in pitch and loudness, 10 clips each."""
    root = tmp_path_factory.mktemp("emo")
    rows = []
    for k, (name, f0, amp) in enumerate([("neutral", 140, 0.2), ("happy", 240, 0.3), ("sad", 100, 0.08), ("angry", 190, 0.6)]):
        for i in range(10):
            path = root / f"{name}_{i}.wav"
            sf.write(path, tone(f0 * (1 + 0.05 * (i % 3)), 0.6 + 0.05 * i, amp, seed=100 * k + i), 16000)
            rows.append({"audio_filepath": str(path), "duration": 0.6 + 0.05 * i, "emotion": name})
    path = root / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_nemo_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    node = EmotionTokenizer(TINY)
    wav = [torch.randn(12000), torch.randn(7000)]
    node.eval()
    with torch.no_grad():
        logits_before, _ = node(*_pad(wav))
    node.save_to(str(tmp_path / "emo.nemo"))
    restored = EmotionTokenizer.restore_from(tmp_path / "emo.nemo")
    with torch.no_grad():
        logits_after, _ = restored(*_pad(wav))
    assert torch.equal(logits_before, logits_after)
    assert restored.cfg.net.fsq_levels == [5, 5, 5]


def _pad(wavs):
    from dragoman.nodes.trainable import pad_batch

    return pad_batch(wavs)


def test_batched_equals_one_by_one():
    torch.manual_seed(1)
    node = EmotionTokenizer(TINY)
    wavs = [torch.randn(n) for n in (16000, 5000, 9100)]
    node.eval()
    with torch.no_grad():
        batch_logits, batch_ids = node(*_pad(wavs))
        for i, w in enumerate(wavs):
            logits, ids = node(*_pad([w]))
            torch.testing.assert_close(logits[0], batch_logits[i], atol=1e-5, rtol=1e-5)
            assert torch.equal(ids[0], batch_ids[i])


def test_trains_with_a_plain_lightning_trainer(manifest, tmp_path):
    import lightning.pytorch as pl

    torch.manual_seed(0)
    cfg = dict(TINY, train_ds={"manifest": str(manifest), "batch_size": 8}, optim={"name": "adamw", "lr": 1e-2})
    node = EmotionTokenizer(cfg)
    wav, lengths, labels = next(iter(node._train_dl))
    node.eval()
    with torch.no_grad():
        loss_before = torch.nn.functional.cross_entropy(node(wav, lengths)[0], labels).item()
    trainer = pl.Trainer(max_epochs=12, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(node)
    node.eval()
    with torch.no_grad():
        loss_after = torch.nn.functional.cross_entropy(node(wav, lengths)[0], labels).item()
    assert loss_after < 0.5 * loss_before, (loss_before, loss_after)
    predicted = node.run(audio=[w[:n] for w, n in zip(wav, lengths)])["emotion"]
    truth = [node.cfg.labels[i] for i in labels.tolist()]
    assert np.mean([p == t for p, t in zip(predicted, truth)]) >= 0.75


def test_load_takes_default_or_a_path(tmp_path, monkeypatch):
    torch.manual_seed(0)
    EmotionTokenizer(TINY).save_to(str(tmp_path / "committed.nemo"))
    torch.manual_seed(1)
    EmotionTokenizer(TINY).save_to(str(tmp_path / "other.nemo"))
    monkeypatch.setattr(EmotionTokenizer, "default_checkpoint", classmethod(lambda cls: tmp_path / "committed.nemo"))
    weights = {name: EmotionTokenizer.restore_from(tmp_path / name).state_dict() for name in ("committed.nemo", "other.nemo")}
    for spec, expected in ((None, "committed.nemo"), ("", "committed.nemo"), ("default", "committed.nemo"),
                           (str(tmp_path / "other.nemo"), "other.nemo"), (tmp_path / "other.nemo", "other.nemo")):
        loaded = EmotionTokenizer.load(spec).state_dict()
        assert all(torch.equal(v, weights[expected][k]) for k, v in loaded.items()), spec
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        EmotionTokenizer.load(tmp_path / "missing.nemo")


def test_restore_errors_are_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        EmotionTokenizer.restore_from(tmp_path / "missing.nemo")
    junk = tmp_path / "junk.nemo"
    junk.write_bytes(b"this is not a tar archive")
    with pytest.raises(CheckpointError, match="not a .nemo archive"):
        EmotionTokenizer.restore_from(junk)
    empty_tar = tmp_path / "empty.nemo"
    with tarfile.open(empty_tar, "w"):
        pass
    with pytest.raises(CheckpointError, match="cannot restore") as err:
        EmotionTokenizer.restore_from(empty_tar)
    assert "\n" not in str(err.value)


def test_a_failed_restore_does_not_poison_later_nodes(tmp_path, manifest):
    empty_tar = tmp_path / "empty.nemo"
    with tarfile.open(empty_tar, "w"):
        pass
    with pytest.raises(CheckpointError):
        EmotionTokenizer.restore_from(empty_tar)
    node = EmotionTokenizer(dict(TINY, train_ds={"manifest": str(manifest), "batch_size": 4}))
    assert node._train_dl is not None  # NeMo would skip data setup while it thinks a restore runs


def test_restore_refuses_pickled_objects(tmp_path):
    """A .nemo whose weights file holds a pickled Python object (not just tensors) is refused."""
    node = EmotionTokenizer(TINY)
    node.save_to(str(tmp_path / "ok.nemo"))
    evil_dir = tmp_path / "evil"
    with tarfile.open(tmp_path / "ok.nemo") as tar:
        tar.extractall(evil_dir, filter="data")
    weights = next(evil_dir.rglob("model_weights.ckpt"))
    torch.save({"payload": _Evil()}, weights)
    with tarfile.open(tmp_path / "evil.nemo", "w") as tar:
        for item in evil_dir.iterdir():
            tar.add(item, arcname=item.name)
    with pytest.raises(CheckpointError, match="cannot restore"):
        EmotionTokenizer.restore_from(tmp_path / "evil.nemo")
    assert not _Evil.ran


class _Evil:
    ran = False

    def __reduce__(self):
        return (_Evil._trigger, ())

    @staticmethod
    def _trigger():
        _Evil.ran = True
        return "pwned"


def test_unknown_config_key_is_an_error():
    from dragoman.nodes.errors import GraphError

    with pytest.raises(GraphError, match="bad config"):
        EmotionTokenizer({"net": {"chanels": 4}})
