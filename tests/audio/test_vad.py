"""VadSegmenter: known speech spans found within 0.1 s on synthetic and espeak-ng speech, UniSS's
merge rule on hand-built span lists, the length cap, silence handling and a stitch round trip."""
import shutil
import subprocess

import numpy as np
import pytest
import torch

from dragoman.nodes.audio.io import read_audio
from dragoman.nodes.audio.stitcher import Stitcher
from dragoman.nodes.audio.vad import VadSegmenter, keep_tails, merge_spans, split_long
from dragoman.nodes.errors import AudioError

SR = 16_000
TOLERANCE_S = 0.1


def speech_like(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A voiced harmonic complex (F0 100-220 Hz with slow intonation, 15 harmonics at 1/k) under a
    syllable-rate (3-6 Hz) envelope that dips to 10 % between syllables, 20 ms onset/offset ramps."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(100, 220) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 16))
    envelope = 0.55 - 0.45 * np.cos(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6))
    envelope *= np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    return (0.15 * voiced * envelope).astype(np.float32)


def synthetic_track(seed=0, seconds=180.0, noise_dbfs=-60.0):
    """Speech-like bursts (0.4-3 s, 3-12 s, and some over the 16 s cap) at random offsets,
    0.5-6 s apart, over white noise. Returns (audio, true spans in seconds)."""
    rng = np.random.default_rng(seed)
    audio = np.zeros(int(seconds * SR), np.float32)
    spans, t = [], rng.uniform(0.5, 2.0)
    while True:
        length = rng.choice([rng.uniform(0.4, 3), rng.uniform(3, 12), rng.uniform(17, 22)], p=[0.4, 0.5, 0.1])
        if t + length > seconds - 0.5:
            break
        start = int(t * SR)
        burst = speech_like(rng, length)
        audio[start : start + len(burst)] = burst
        spans.append((start / SR, (start + len(burst)) / SR))
        t += length + rng.choice([rng.uniform(0.5, 1.5), rng.uniform(1.5, 6)])
    audio += rng.standard_normal(len(audio)).astype(np.float32) * np.float32(10 ** (noise_dbfs / 20))
    return torch.from_numpy(audio), spans


def assert_spans_match(found, truth, tolerance=TOLERANCE_S):
    assert len(found) == len(truth), f"found {len(found)} spans, expected {len(truth)}"
    worst = max(max(abs(a - c), abs(b - d)) for (a, b), (c, d) in zip(found, truth))
    assert worst <= tolerance, f"boundary off by {worst:.3f} s"


@pytest.fixture(scope="module")
def track():
    return synthetic_track()


def test_three_minutes_of_synthetic_speech(track):
    audio, truth = track
    assert len(truth) >= 15 and any(b - a > 16 for a, b in truth)
    out = VadSegmenter().run(audio=[audio])
    assert_spans_match(out["spans"][0], truth)


@pytest.mark.parametrize("gain, noise_dbfs", [(0.01, -60.0), (1.0, -35.0)], ids=["40dB-quieter", "noisy"])
def test_quiet_and_noisy_recordings(gain, noise_dbfs):
    audio, truth = synthetic_track(noise_dbfs=noise_dbfs)
    out = VadSegmenter().run(audio=[audio * gain])
    assert_spans_match(out["spans"][0], truth)


def test_segments_obey_cap_and_cover_every_span(track):
    audio, truth = track
    out = VadSegmenter(max_segment_s=10.0).run(audio=[audio])
    layout = out["layout"][0]
    assert layout.length == len(audio)
    assert all(0 < b - a <= 10 * SR for a, b in layout.segments)
    assert len(out["segments"]) == len(layout.segments)
    for piece, (a, b) in zip(out["segments"], layout.segments):
        assert torch.equal(piece, audio[a:b])
    for start, end in out["spans"][0]:  # every sample of detected speech is in some segment
        inside = sum(max(0, min(b, end * SR) - max(a, start * SR)) for a, b in layout.segments)
        assert inside == pytest.approx((end - start) * SR, abs=1)


def test_segments_keep_the_silence_after_their_speech():
    """Two bursts 2 s apart, the second 0.1 s before the end: the first segment keeps 0.35 s
    after its detected speech (tail_s), the second only what the file has; tail_s=0 keeps none."""
    rng = np.random.default_rng(3)
    audio = np.zeros(int(5.0 * SR), np.float32)
    first, second = speech_like(rng, 1.0), speech_like(rng, 1.4)
    audio[int(0.5 * SR) : int(0.5 * SR) + len(first)] = first
    audio[int(3.5 * SR) : int(3.5 * SR) + len(second)] = second
    audio = torch.from_numpy(audio)
    apart = dict(merge_gap_s=0.5, short_gap_s=0.5)  # two segments, not UniSS's one merged
    kept = VadSegmenter(**apart).run(audio=[audio])
    bare = VadSegmenter(tail_s=0.0, **apart).run(audio=[audio])
    (a0, b0), (a1, b1) = kept["layout"][0].segments
    assert [a0, a1] == [a for a, _ in bare["layout"][0].segments]
    assert b0 - bare["layout"][0].segments[0][1] == round(0.35 * SR)
    assert b1 == len(audio)
    assert torch.equal(kept["segments"][0], audio[a0:b0])


def test_tails_never_reach_the_next_segment_nor_pass_the_cap():
    assert keep_tails([(0, 100), (120, 200), (300, 400)], 50, 420, 1000) == ((0, 120), (120, 250), (300, 420))
    assert keep_tails([(0, 100), (300, 390)], 50, 420, 110) == ((0, 110), (300, 410))  # the length cap
    assert keep_tails([], 50, 420, 1000) == ()


def test_long_speech_is_split_in_its_pauses():
    rng = np.random.default_rng(7)
    # 40 s of speech; 200 ms pauses (too short to end a span) at 6, 13.5, 27 and 33 s
    pauses = [6.0, 13.5, 27.0, 33.0]
    edges = [0.0] + [p for p in pauses for _ in (0, 1)] + [40.0]
    audio = np.zeros(40 * SR, np.float32)
    for a, b in zip(edges[::2], edges[1::2]):
        a, b = (a + 0.2 if a else a), b
        burst = speech_like(rng, b - a)
        audio[int(a * SR) : int(a * SR) + len(burst)] = burst
    out = VadSegmenter().run(audio=[torch.from_numpy(audio)])
    assert len(out["spans"][0]) == 1
    cuts = [b / SR for _, b in out["layout"][0].segments[:-1]]
    assert all(b - a <= 16 * SR for a, b in out["layout"][0].segments)
    # each cut is searched in the 4 s before the 16 s cap: 12-16 s holds the pause at 13.5 s,
    # then 25.6-29.6 s the one at 27 s; the pauses at 6 and 33 s are not needed
    assert cuts == pytest.approx([13.6, 27.1], abs=0.1)


def test_split_long_cuts_at_the_quietest_frame_before_the_cap():
    levels = np.full(2500, -20.0)  # 25 s of frames
    levels[1150:1170] = -60.0  # a pause around 11.6 s, inside the search window 10-16 s
    pieces = split_long([(0, 25 * SR)], levels, SR, max_samples=16 * SR, search_samples=6 * SR)
    assert len(pieces) == 2 and pieces[0][0] == 0 and pieces[0][1] == pieces[1][0] and pieces[1][1] == 25 * SR
    assert abs(pieces[0][1] / SR - 11.6) < 0.1
    flat = split_long([(0, 30 * SR)], np.full(3000, -20.0), SR, max_samples=8 * SR, search_samples=2 * SR)
    assert all(b - a <= 8 * SR for a, b in flat) and flat[0][0] == 0 and flat[-1][1] == 30 * SR


@pytest.mark.parametrize(
    "spans, expected",
    [
        ([(0, 5), (5.5, 9)], [(0, 9)]),  # gap < 1 s
        ([(0, 9), (10.5, 12)], [(0, 9), (10.5, 12)]),  # gap >= 1 s and current >= 8 s
        ([(0, 3), (6, 10)], [(0, 10)]),  # current < 8 s and gap < 5 s
        ([(0, 3), (8, 10)], [(0, 3), (8, 10)]),  # current < 8 s but gap >= 5 s
        ([(0, 7), (7.5, 17)], [(0, 7), (7.5, 17)]),  # merged would be 17 s > 16 s
        ([(0, 9), (10, 12)], [(0, 9), (10, 12)]),  # gap exactly 1 s is not < 1 s
        ([(0, 10), (10.5, 16)], [(0, 16)]),  # exactly 16 s is allowed
        ([(0, 2), (2.5, 4), (7, 9), (9.5, 12), (13, 17)], [(0, 12), (13, 17)]),  # a chain
        ([(0, 20), (20.5, 21)], [(0, 20), (20.5, 21)]),  # an over-long span passes through
        ([], []),
    ],
)
def test_uniss_merge_rule(spans, expected):
    assert merge_spans(spans) == expected


def test_merge_rule_thresholds_are_settings():
    spans = [(0, 3), (6, 10)]
    assert merge_spans(spans, short_segment=2.0) == spans
    assert merge_spans(spans, short_gap=3.0) == spans
    assert merge_spans(spans, max_length=9.0) == spans


def test_silence_is_an_error_naming_the_input_or_empty_on_request():
    rng = np.random.default_rng(1)
    noise = torch.from_numpy(rng.standard_normal(5 * SR).astype(np.float32) * 0.01)
    for silent in (torch.zeros(5 * SR), noise):
        with pytest.raises(AudioError, match=r"^quiet\.wav: no speech found"):
            VadSegmenter().run(audio=[silent], path=["quiet.wav"])
    out = VadSegmenter(on_silence="empty").run(audio=[noise])
    assert out["segments"] == [] and out["layout"][0].segments == () and out["spans"] == [[]]
    assert torch.equal(Stitcher().run(audio=[], layout=out["layout"])["audio"][0], torch.zeros(5 * SR))


def test_batch_round_trip_through_the_stitcher(track):
    audio, _ = track
    second = audio[30 * SR : 70 * SR].clone()
    out = VadSegmenter().run(audio=[audio, second])
    assert len(out["segments"]) == sum(len(layout.segments) for layout in out["layout"])
    back = Stitcher().run(audio=out["segments"], layout=out["layout"])["audio"]
    for original, layout, restored in zip([audio, second], out["layout"], back):
        mask = torch.zeros(len(original), dtype=torch.bool)
        for a, b in layout.segments:
            mask[a:b] = True
        assert len(restored) == len(original)
        assert torch.equal(restored[mask], original[mask]) and not restored[~mask].any()


def _espeak(tmp_path, voice: str, text: str) -> np.ndarray:
    path = tmp_path / "say.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    wav = read_audio(path).numpy()
    audible = np.flatnonzero(np.abs(wav) > 1e-3 * np.abs(wav).max())
    return wav[audible[0] : audible[-1] + 1]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_sentences_at_known_offsets(tmp_path):
    sentences = [
        ("en", "The weather is lovely today"),
        ("cmn-latn-pinyin", "ni3 hao3 shi4 jie4"),
        ("en", "Please translate this sentence into Chinese"),
        ("en-us", "Thank you very much"),
    ]
    audio, truth, t = np.zeros(30 * SR, np.float32), [], 1.3
    for voice, text in sentences:
        wav = _espeak(tmp_path, voice, text)
        start = int(t * SR)
        audio[start : start + len(wav)] = wav
        truth.append((start / SR, (start + len(wav)) / SR))
        t += len(wav) / SR + 2.0
    out = VadSegmenter().run(audio=[torch.from_numpy(audio)])
    assert_spans_match(out["spans"][0], truth)
