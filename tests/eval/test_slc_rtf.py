"""SLC-p on constructed duration ratios (boundaries included) and pooled real-time factors."""
import pytest

from dragoman.nodes.eval.prosody import slc, within
from dragoman.nodes.eval.scoring import real_time_factor, stage_timings


def test_slc_counts_ratios_within_p_boundaries_included():
    # ratios from sample counts as the eval computes them: out_frames / src_frames
    src = 16000
    ratios = [n / src for n in (16000, 19200, 12800, 19201, 12799, 22400, 9600, 24000, 8000)]
    #          1.0   1.2 (edge) 0.8 (edge)  >1.2   <0.8   1.4 (edge) 0.6 (edge) 1.5   0.5
    assert slc(ratios, 0.2) == pytest.approx(3 / 9)
    assert slc(ratios, 0.4) == pytest.approx(7 / 9)
    assert within(1.2, 0.2) and within(0.8, 0.2) and not within(1.2001, 0.2)
    assert slc([], 0.2) is None


def test_real_time_factor_pools_time_over_audio():
    # 1 s of work on 10 s of audio and 3 s on 2 s: pooled 4 / 12, not the mean of 0.1 and 1.5
    rtf, n = real_time_factor([(1.0, 10.0), (3.0, 2.0), (None, 5.0)])
    assert rtf == pytest.approx(4 / 12) and n == 2
    assert real_time_factor([(None, 3.0)]) == (None, 0)


def test_stage_timings_per_stage():
    rows = [({"translator": 2.0, "decoder": 1.0}, 10.0), ({"translator": 4.0}, 5.0), ({}, 1.0)]
    out = stage_timings(rows)
    assert list(out) == ["decoder", "translator"]
    assert out["translator"] == {"total_s": 6.0, "mean_s": 3.0, "rtf": pytest.approx(6 / 15), "n": 2}
    assert out["decoder"] == {"total_s": 1.0, "mean_s": 1.0, "rtf": pytest.approx(0.1), "n": 1}
    assert stage_timings([({}, 1.0)]) == {}
