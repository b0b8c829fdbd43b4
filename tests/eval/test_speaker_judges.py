"""Speaker judges: resemblyzer's weights load offline with weights_only, its front end matches
librosa's, same-voice espeak-ng renders score higher than different voices (both judges), and
the same/different-speaker baselines average the right pairs."""
import numpy as np
import pytest
import torch

from dragoman.nodes.audio.io import read_audio
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.eval.judges import (
    JUDGES,
    ResemblyzerJudge,
    default_judge_spec,
    pair_cosines,
    partial_slices,
    resemblyzer_weights,
    speaker_baselines,
)

needs_resemblyzer = pytest.mark.skipif(resemblyzer_weights() is None, reason="resemblyzer is not installed")
VOICES = ["en+m1", "en+f3", "en+m7", "en+whisper"]
SENTENCES = ["Could you tell me where the nearest train station is?",
             "We planted seven apple trees in the garden last spring."]


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """{(voice, sentence index): waveform}, or skip without espeak-ng."""
    import shutil
    import subprocess

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("voices")
    out = {}
    for voice in VOICES:
        for k, text in enumerate(SENTENCES):
            path = folder / f"{voice}_{k}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
            out[voice, k] = read_audio(path)
    return out


@needs_resemblyzer
def test_resemblyzer_is_the_default_and_loads_offline():
    assert default_judge_spec() == "resemblyzer"
    judge = JUDGES.create("resemblyzer")
    assert judge.info.independent and judge.info.name == "resemblyzer"
    emb = judge.embed([torch.randn(16000) * 0.1, torch.randn(40000) * 0.1])
    assert emb.shape == (2, 256)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert (emb >= 0).all()  # GE2E embeddings pass a ReLU before normalisation


@needs_resemblyzer
def test_mel_front_end_matches_librosa():
    librosa = pytest.importorskip("librosa")
    judge = ResemblyzerJudge()
    rng = np.random.default_rng(0)
    t = np.arange(23456) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)
    ours = judge.mel_frames(wav)
    ref = librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=400, hop_length=160, n_mels=40).T
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


def test_partial_slices_follow_resemblyzer_rules():
    # 3.0 s: 301 mel frames, step 77 -> partials at 0, 77, 154; the last is 91 % covered: kept
    assert partial_slices(48000) == [(0, 160), (77, 237), (154, 314)]
    # 2.0 s: the second partial is 77 % covered: kept; 1.9 s: 71 %: dropped
    assert partial_slices(32000) == [(0, 160), (77, 237)]
    assert partial_slices(30400) == [(0, 160)]
    assert partial_slices(4000) == [(0, 160)]  # shorter than one partial: one, zero padded


@pytest.mark.parametrize("name", [pytest.param("resemblyzer", marks=needs_resemblyzer), "mfcc-stats"])
def test_same_voice_scores_higher_than_other_voices(renders, name):
    judge = JUDGES.create(name)
    first = judge.embed([renders[v, 0] for v in VOICES])
    second = judge.embed([renders[v, 1] for v in VOICES])
    sims = first @ second.T  # rows: sentence 0 by voice i, columns: sentence 1 by voice j
    same = np.diag(sims)
    diff = sims[~np.eye(len(VOICES), dtype=bool)].reshape(len(VOICES), -1)
    assert (same > diff.max(axis=1)).all(), np.round(sims, 3)
    assert same.mean() - diff.mean() > (0.15 if name == "resemblyzer" else 0.05)


def test_unknown_judge_is_a_one_line_error():
    with pytest.raises(DragomanError, match="unknown speaker judge 'nope'.*mfcc-stats"):
        JUDGES.create("nope")


def test_pair_cosines_and_baselines_on_known_embeddings():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 1.0], [0.0, -1.0]])
    assert pair_cosines(a, b) == pytest.approx([np.sqrt(0.5), -1.0])

    # speakers x, x, y, y with the second x file listed twice (same file: never paired with itself)
    e = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]])
    spk = ["x", "x", "y", "y", "x"]
    keys = ["x1", "x2", "y1", "y2", "x2"]
    same, diff, n_same, n_diff = speaker_baselines(e, spk, keys)
    # same pairs: (x1,x2) twice = 0.8 each, (y1,y2) = 0.8; x2-x2 duplicates excluded
    assert (n_same, same) == (3, pytest.approx(0.8))
    # diff pairs: x1-y1 0, x1-y2 .6, x2-y1 .6, x2-y2 .96, twice for the duplicated x2
    assert n_diff == 6
    assert diff == pytest.approx((0 + 0.6 + 2 * (0.6 + 0.96)) / 6)

    # unlabelled lines are left out; a single speaker has no "different" baseline
    same, diff, n_same, n_diff = speaker_baselines(e[:2], ["x", None], ["x1", "x2"])
    assert (same, diff, n_same, n_diff) == (None, None, 0, 0)
    same, diff, _, n_diff = speaker_baselines(e[:2], ["x", "x"], ["x1", "x2"])
    assert same == pytest.approx(0.8) and diff is None and n_diff == 0
