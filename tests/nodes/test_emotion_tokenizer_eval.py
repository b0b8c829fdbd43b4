"""`dragoman node eval`: the speaker probe, the emotion evaluation end to end (CLI, JSON), and the
EmotionTokenizer's speaker-adversarial branch."""
import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest
import soundfile as sf
import torch

from dragoman.graphs.cli import main as cli
from dragoman.nodes.emotion_tokenizer import EmotionTokenizer
from dragoman.nodes.node_eval import evaluate_emotion_tokenizer, positional_one_hot, speaker_probe, token_histograms

TINY = {"net": {"channels": 16, "layers": 2, "num_tokens": 2, "fsq_levels": [5, 5, 5]}}
EMOTIONS = {"neutral": (1.0, 0.2), "happy": (1.6, 0.3), "sad": (0.8, 0.08), "angry": (1.3, 0.6)}


def tone(f0, seconds, amp, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    wav = sum(amp / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 5))
    return (wav + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """Two 'speakers' (base pitch 120 / 200 Hz) x four emotions (pitch factor, loudness)."""
    root = tmp_path_factory.mktemp("emo_eval")
    rows = []
    for s, base in enumerate([120, 200]):
        for e, (name, (factor, amp)) in enumerate(EMOTIONS.items()):
            for i in range(5):
                path = root / f"s{s}_{name}_{i}.wav"
                sf.write(path, tone(base * factor, 0.5 + 0.05 * i, amp, seed=100 * s + 10 * e + i), 16000)
                rows.append({"audio_filepath": str(path), "duration": 0.5 + 0.05 * i, "emotion": name,
                             "speaker": f"s{s}", "pair_id": f"{name}{i}"})
    path = root / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_speaker_probe_finds_a_speaker_and_not_noise():
    rng = np.random.default_rng(0)
    speakers = [f"s{i % 4}" for i in range(400)]
    groups = [f"p{i // 2}" for i in range(400)]
    coded = np.eye(4)[[i % 4 for i in range(400)]] + 0.3 * rng.standard_normal((400, 4))
    informed = speaker_probe(coded, speakers, groups)
    assert informed["speaker_probe_acc"] > 0.9
    noise = speaker_probe(rng.standard_normal((400, 8)), speakers, groups)
    assert noise["speaker_probe_acc"] < noise["speaker_probe_chance"] + 0.15
    assert 0.25 <= noise["speaker_probe_chance"] < 0.5 and 60 < noise["speaker_probe_utterances"] < 140


def test_token_features():
    hist = token_histograms([torch.tensor([0, 2, 2]), torch.tensor([1])], 4)
    np.testing.assert_allclose(hist, [[1 / 3, 0, 2 / 3, 0], [0, 1, 0, 0]])
    onehot = positional_one_hot(torch.tensor([[1, 3], [0, 0]]), 4)
    np.testing.assert_array_equal(onehot, [[0, 1, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 1, 0, 0, 0]])


@pytest.fixture(scope="module")
def checkpoint(manifest, tmp_path_factory):
    torch.manual_seed(0)
    node = EmotionTokenizer(TINY)
    path = tmp_path_factory.mktemp("ckpt") / "emo.nemo"
    node.save_to(str(path))
    return path, node


def test_evaluation_matches_the_node_run_one_by_one(manifest, checkpoint):
    from dragoman.nodes.audio.io import read_audio
    from dragoman.nodes.manifest import read_manifest

    path, node = checkpoint
    result = evaluate_emotion_tokenizer(manifest, path, batch_size=7)
    rows = read_manifest(manifest)
    predicted = [node.run(audio=[read_audio(r["audio_filepath"])])["emotion"][0] for r in rows]
    assert result["accuracy"] == pytest.approx(np.mean([p == r["emotion"] for p, r in zip(predicted, rows)]))
    assert result["utterances"] == 40 and set(result["accuracy_per_emotion"]) == set(EMOTIONS)
    assert 1 <= result["used_codes"] <= result["codebook_size"] == 125
    assert 0 <= result["speaker_probe_acc"] <= 1 and result["speaker_probe_chance"] >= 0.5


def test_cli_prints_one_json_object(manifest, checkpoint):
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli(["node", "eval", "emotion_tokenizer", "--manifest", str(manifest), "--checkpoint",
                    str(checkpoint[0]), "--json"])
    assert code == 0
    result = json.loads(out.getvalue())
    assert {"accuracy", "speaker_probe_acc", "speaker_probe_chance", "codebook_perplexity"} <= set(result)


def test_cli_reports_a_missing_checkpoint_in_one_line(manifest, tmp_path, capsys):
    code = cli(["node", "eval", "emotion_tokenizer", "--manifest", str(manifest), "--checkpoint",
                str(tmp_path / "nope.nemo"), "--json"])
    err = capsys.readouterr().err
    assert code == 2 and "no such checkpoint" in err and err.count("\n") == 1


def test_speaker_adversary_trains_beside_the_emotion_classifier(manifest):
    torch.manual_seed(0)
    node = EmotionTokenizer(dict(TINY, adversary_weight=0.5, train_ds={"manifest": str(manifest), "batch_size": 40}))
    assert list(node.cfg.speakers) == ["s0", "s1"] and node.net.adversary is not None
    batch = next(iter(node._train_dl))
    assert len(batch) == 4 and set(batch[3].tolist()) == {0, 1}
    optimizer = torch.optim.AdamW(node.parameters(), lr=1e-2)
    accuracies = []
    for _ in range(40):
        node.train()
        loss, logs = node._step(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        accuracies.append(float(logs["acc"]))
    assert "adv" in logs and accuracies[-1] >= 0.9 > accuracies[0]


def test_copy_synthesis_augmentation_renders_a_share_of_the_batch(manifest):
    """prob 1: every item becomes the weightless synthesiser's rendering of its own envelope, F0
    and voicing (same length, close in level, not the same samples); prob 0: untouched; a
    probability outside [0, 1] is a one-line error."""
    from dragoman.nodes.errors import GraphError

    node = EmotionTokenizer(dict(TINY, train_ds={"manifest": str(manifest), "batch_size": 8}))
    wav, lengths, labels = next(iter(node._train_dl))
    assert node._copy_synthesis((wav, lengths, labels))[0] is wav  # off by default
    node.cfg.augment.copy_synthesis_prob = 1.0
    torch.manual_seed(0)
    out, out_lengths, out_labels = node._copy_synthesis((wav, lengths, labels))
    assert torch.equal(out_lengths, lengths) and torch.equal(out_labels, labels)
    for i, n in enumerate(lengths.tolist()):
        assert not torch.equal(out[i, :n], wav[i, :n]) and not out[i, n:].any()
        rms_in, rms_out = (float(x[i, :n].square().mean().sqrt()) for x in (wav, out))
        assert 0.5 < rms_out / rms_in < 2.0, (rms_in, rms_out)
    with pytest.raises(GraphError, match=r"copy_synthesis_prob must be in \[0, 1\], got 1.5") as err:
        EmotionTokenizer(dict(TINY, augment={"copy_synthesis_prob": 1.5}))
    assert "\n" not in str(err.value)
