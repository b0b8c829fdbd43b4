"""UniST-style filters on rendered pairs.

UniST keeps a synthesized target only if it is about as long as its source and if a recogniser
transcribes it back to its text. Here: the target/source duration ratio must lie in [0.5, 2.0]
(pairs outside are dropped and counted); pairs whose speech-only ratio (leading and trailing
silence trimmed) lies in [0.7, 1.5] are flagged `hq`, the subset for phase-3 refinement and for
duration-consistency (SLC) targets; a `RecognitionFilter` wraps any recogniser callable once a
recogniser node exists and drops pairs whose word (en) or character (zh) error rate is too high
on either side.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
import numpy as np

RATIO_RANGE = (0.5, 2.0)
HQ_RANGE = (0.7, 1.5)
# Frames quieter than this below the loudest 10 ms frame count as silence: espeak-ng's pauses are
# digital silence and its quietest voiced frames sit ~30 dB below the peak.
SILENCE_DB = -40.0


def speech_bounds(wav: np.ndarray, sample_rate: int, silence_db: float = SILENCE_DB) -> tuple[int, int]:
    """(first, last + 1) sample of the region between leading and trailing silence."""
    frame = max(1, sample_rate // 100)
    n = len(wav) // frame
    if n == 0:
        return 0, 0
    rms = np.sqrt(np.mean(np.square(wav[: n * frame].reshape(n, frame), dtype=np.float64), axis=1))
    loud = np.flatnonzero(rms > max(rms.max() * 10 ** (silence_db / 20), 1e-5))
    if loud.size == 0:
        return 0, 0
    return int(loud[0] * frame), int(min(len(wav), (loud[-1] + 1) * frame))


def speech_duration(wav: np.ndarray, sample_rate: int) -> float:
    start, end = speech_bounds(wav, sample_rate)
    return (end - start) / sample_rate


@dataclass(frozen=True)
class Verdict:
    keep: bool
    hq: bool
    ratio: float  # target / source, whole files
    speech_ratio: float  # target / source, silence trimmed
    reason: str = ""


def judge_durations(source: float, target: float, source_speech: float, target_speech: float,
                    ratio_range=RATIO_RANGE, hq_range=HQ_RANGE) -> Verdict:
    """Keep/drop and hq decision for one pair from its durations in seconds."""
    if source <= 0 or source_speech <= 0:
        return Verdict(False, False, float("inf"), float("inf"), "silent source")
    ratio, speech_ratio = target / source, target_speech / source_speech
    if not ratio_range[0] <= ratio <= ratio_range[1]:
        return Verdict(False, False, ratio, speech_ratio, "duration_ratio")
    return Verdict(True, hq_range[0] <= speech_ratio <= hq_range[1], ratio, speech_ratio)


_PUNCT = re.compile(r"[^\w\s']|_", re.UNICODE)


def error_rate(reference: str, hypothesis: str, lang: str) -> float:
    """Word error rate for English (lowercased, punctuation stripped), character error rate for
    Chinese (punctuation and spaces stripped): Levenshtein distance / reference length."""
    ref, hyp = _PUNCT.sub(" ", reference.lower()), _PUNCT.sub(" ", hypothesis.lower())
    if lang == "zh":
        ref_units, hyp_units = list("".join(ref.split())), list("".join(hyp.split()))
    else:
        ref_units, hyp_units = ref.split(), hyp.split()
    if not ref_units:
        return 0.0 if not hyp_units else 1.0
    previous = list(range(len(hyp_units) + 1))
    for i, r in enumerate(ref_units, start=1):
        current = [i] + [0] * len(hyp_units)
        for j, h in enumerate(hyp_units, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / len(ref_units)


@dataclass
class RecognitionFilter:
    """Re-recognition filter. `recognizer` follows `dragoman.nodes.eval.recognizers.Recognizer`
    (`transcribe(list of 16 kHz mono tensors, lang) -> list of texts`); an utterance passes when
    its error rate against the intended text is at most `max_error`."""

    recognizer: object
    max_error: float = 0.2

    def error(self, wav: np.ndarray, lang: str, text: str) -> float:
        import torch

        hypothesis = self.recognizer.transcribe([torch.as_tensor(np.asarray(wav, dtype=np.float32))], lang)[0]
        return error_rate(text, hypothesis, lang)

    def passes(self, wav: np.ndarray, lang: str, text: str) -> bool:
        return self.error(wav, lang, text) <= self.max_error
