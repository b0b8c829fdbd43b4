"""Stitcher: pieces land at their segments' starts, never overlap, and the output keeps the
source length unless the pieces run past it."""
import numpy as np
import pytest
import torch

from dragoman.nodes.audio.stitcher import Stitcher, plan_placement, time_compress
from dragoman.nodes.audio.vad import SegmentLayout
from dragoman.nodes.errors import DragomanError

SR = 16_000


def _piece(n: int, value: float) -> torch.Tensor:
    return torch.full((n,), value)


def test_pieces_that_fit_sit_at_their_segment_starts():
    layout = SegmentLayout(((1000, 3000), (5000, 9000)), 12_000)
    out = Stitcher().run(audio=[_piece(1500, 0.5), _piece(4000, -0.25)], layout=[layout])
    wav, placement = out["audio"][0], out["placement"][0]
    assert len(wav) == 12_000
    assert placement.segments == ((1000, 2500), (5000, 9000))
    expected = torch.zeros(12_000)
    expected[1000:2500] = 0.5
    expected[5000:9000] = -0.25
    assert torch.equal(wav, expected)


def test_a_long_piece_pushes_the_next_one_later_instead_of_overlapping():
    layout = SegmentLayout(((0, 2000), (3000, 5000), (9000, 10_000)), 10_000)
    pieces = [_piece(4000, 0.1), _piece(3000, 0.2), _piece(2500, 0.3)]
    out = Stitcher().run(audio=pieces, layout=[layout])
    wav, placement = out["audio"][0], out["placement"][0]
    # second piece starts where the first ends (4000 > 3000); third keeps its own start (9000)
    assert placement.segments == ((0, 4000), (4000, 7000), (9000, 11_500))
    assert len(wav) == 11_500  # past the source's end: max(source length, end of last piece)
    for (start, end), value in zip(placement.segments, (0.1, 0.2, 0.3)):
        assert torch.all(wav[start:end] == value)
    assert torch.all(wav[7000:9000] == 0)


def test_plan_never_overlaps_and_never_starts_early():
    rng = np.random.default_rng(3)
    for _ in range(200):
        starts = np.sort(rng.choice(100_000, size=8, replace=False))
        segments = [(int(s), int(s) + 10) for s in starts]
        lengths = rng.integers(0, 40_000, size=8).tolist()
        plan = plan_placement(segments, lengths, 100_010)
        assert [n for _, n in plan] == lengths
        for (start, _), (seg_start, _) in zip(plan, segments):
            assert start >= seg_start
        for (a, n), (b, _) in zip(plan, plan[1:]):
            assert a + n <= b


def test_batch_regrouping_by_layouts():
    layouts = [SegmentLayout(((100, 200),), 1000), SegmentLayout((), 500), SegmentLayout(((0, 10), (50, 60)), 80)]
    pieces = [_piece(100, 1.0), _piece(10, 2.0), _piece(10, 3.0)]
    out = Stitcher().run(audio=pieces, layout=[layouts[0], layouts[1].as_dict(), layouts[2]])
    assert [len(w) for w in out["audio"]] == [1000, 500, 80]
    assert float(out["audio"][0].sum()) == 100.0
    assert float(out["audio"][1].abs().sum()) == 0.0  # no speech: silence of the source length
    assert out["placement"][2].segments == ((0, 10), (50, 60))
    assert float(out["audio"][2][50:60].sum()) == 30.0


def test_piece_count_must_match_layouts():
    layout = SegmentLayout(((0, 10), (20, 30)), 40)
    with pytest.raises(DragomanError, match="got 1 audio pieces but the 1 layout"):
        Stitcher().run(audio=[_piece(10, 1.0)], layout=[layout])


def test_layout_rejects_overlapping_segments():
    with pytest.raises(DragomanError, match="overlaps"):
        SegmentLayout(((0, 100), (50, 150)), 200)


def _dominant_hz(x: torch.Tensor) -> float:
    spectrum = np.abs(np.fft.rfft(x.numpy() * np.hanning(len(x))))
    return float(np.argmax(spectrum) * SR / len(x))


def test_compress_speeds_up_an_overrunning_piece_without_changing_pitch():
    t = torch.arange(int(1.2 * SR)) / SR
    tone = 0.5 * torch.sin(2 * np.pi * 440.0 * t)
    layout = SegmentLayout(((0, SR), (SR, 2 * SR)), 2 * SR)
    out = Stitcher(compress=True, max_speedup=1.25).run(audio=[tone, _piece(SR // 2, 0.0)], layout=[layout])
    placement = out["placement"][0]
    assert placement.segments[0] == (0, SR)  # 1.2 s squeezed into the 1 s before the next segment
    assert placement.segments[1][0] == SR
    assert len(out["audio"][0]) == 2 * SR
    assert _dominant_hz(out["audio"][0][: SR]) == pytest.approx(440.0, abs=3.0)
    # plain resampling would have raised the pitch to 528 Hz; the level must not change either
    squeezed = time_compress(tone, SR)
    assert _dominant_hz(squeezed) == pytest.approx(440.0, abs=3.0)
    assert float(squeezed[800:-800].pow(2).mean().sqrt()) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_compress_is_bounded_by_max_speedup():
    layout = SegmentLayout(((0, SR), (SR, 2 * SR)), 2 * SR)
    plan = plan_placement(layout.segments, [2 * SR, SR], layout.length, compress=True, max_speedup=1.25)
    assert plan[0] == (0, int(np.ceil(2 * SR / 1.25)))  # only 1.25x: the rest pushes the next piece
    assert plan[1][0] == plan[0][1]
