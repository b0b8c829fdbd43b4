"""Duration and speed: Speech Length Compliance (SLC-p) and the real-time factor.

SLC-p (UniSS, DESIGN §9) is the share of utterances whose output duration is within p of the
source's: |dur_out / dur_src - 1| <= p, for p = 0.2 and 0.4. Durations are read from the audio
files' headers (frames / sample rate), never from what the run says it wrote.

The real-time factor is total processing time over total source duration (RTF < 1: faster than
real time), pooled over utterances rather than averaged per utterance, so a few long
utterances weigh as much as their audio does. Per-stage factors use the same denominator.
"""
from __future__ import annotations

from typing import Iterable, Sequence

SLC_THRESHOLDS = (0.2, 0.4)
# Ratios are quotients of sample counts; 1e-9 keeps a ratio of exactly 1.2 (19200/16000) inside
# p = 0.2 despite binary rounding (1.2 - 1 = 0.19999999999999996 but 1 - 0.8 may round up).
_EPS = 1e-9


def within(ratio: float, p: float) -> bool:
    return abs(ratio - 1.0) <= p + _EPS


def slc(ratios: Sequence[float], p: float) -> float | None:
    """Share of `ratios` (dur_out / dur_src) within p of 1; None for no utterances."""
    if not ratios:
        return None
    return sum(within(r, p) for r in ratios) / len(ratios)


def real_time_factor(pairs: Iterable[tuple[float | None, float]]) -> tuple[float | None, int]:
    """(sum of seconds / sum of source seconds, utterances counted) over the (seconds, source
    seconds) pairs whose seconds are known."""
    known = [(s, d) for s, d in pairs if s is not None]
    total_audio = sum(d for _, d in known)
    if not known or total_audio <= 0:
        return None, 0
    return sum(s for s, _ in known) / total_audio, len(known)


def stage_timings(rows: Sequence[tuple[dict[str, float], float]]) -> dict[str, dict]:
    """{stage: {total_s, mean_s, rtf, n}} from (timings, source seconds) per utterance; each
    stage's RTF is over the utterances that recorded that stage."""
    stages: dict[str, list[tuple[float, float]]] = {}
    for timings, src_dur in rows:
        for stage, seconds in timings.items():
            stages.setdefault(stage, []).append((seconds, src_dur))
    out = {}
    for stage in sorted(stages):
        vals = stages[stage]
        total = sum(s for s, _ in vals)
        rtf, n = real_time_factor(vals)
        out[stage] = {"total_s": total, "mean_s": total / len(vals), "rtf": rtf, "n": n}
    return out
