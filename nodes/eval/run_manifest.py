"""The run manifest: what `dragoman translate --manifest ... --out-dir D` writes to `D/run.jsonl`
and what `dragoman eval` scores.

One JSON object per line, one line per translated utterance:

required
    source_audio     path of the source speech
    source_lang      "zh" or "en"
    target_lang      "zh" or "en" (the other one)
    reference_text   the reference translation (target language)
    output_audio     path of the translated speech the system wrote
optional
    output_text      the system's text translation; null/absent when the mode writes none
                     (`direct`), which makes Text-BLEU null for that direction
    source_text      the source transcript (reference)
    transcript       the system's own transcript of the source (`quality` mode)
    reference_audio  path of reference target speech, when the corpus has it
    speaker          speaker label of the source (drives the same/different-speaker baselines)
    emotion          emotion label of the source
    id               utterance id
    wall_s           seconds the system spent on this utterance, end to end
    audio_s          seconds of source audio as the run measured them (informational: eval
                     reads durations from the files)
    timings          {stage name: seconds} for the stages the run timed

Relative paths are resolved against the manifest's folder, so a run directory can be moved.
A line that is not a JSON object, lacks a required field, has a wrong type or an unknown
language is skipped and reported with its line number; the rest of the run is still scored.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from dragoman.nodes.errors import DragomanError

LANGS = ("zh", "en")
DIRECTIONS = ("zh-en", "en-zh")
REQUIRED = ("source_audio", "source_lang", "target_lang", "reference_text", "output_audio")
_OPTIONAL_TEXT = ("output_text", "source_text", "transcript", "speaker", "emotion", "id")


class RunManifestError(DragomanError):
    """A run manifest that cannot be scored at all (missing, empty, nothing valid in it)."""


@dataclasses.dataclass
class RunItem:
    """One valid manifest line; paths are resolved."""

    line: int
    source_audio: Path
    output_audio: Path
    source_lang: str
    target_lang: str
    reference_text: str
    output_text: str | None = None
    source_text: str | None = None
    transcript: str | None = None
    reference_audio: Path | None = None
    speaker: str | None = None
    emotion: str | None = None
    id: str | None = None
    wall_s: float | None = None
    audio_s: float | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def direction(self) -> str:
        return f"{self.source_lang}-{self.target_lang}"


@dataclasses.dataclass
class Skipped:
    line: int
    reason: str

    def as_dict(self) -> dict:
        return {"line": self.line, "reason": self.reason}


def _resolve(value: str, base: Path) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base / p


def _number(row: dict, key: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"'{key}' must be a non-negative number, got {value!r}")
    return float(value)


def parse_row(row: dict, line: int, base: Path) -> RunItem:
    """Validate one decoded line; ValueError names the problem."""
    missing = [k for k in REQUIRED if row.get(k) in (None, "")]
    if missing:
        raise ValueError(f"missing required field(s) {missing}")
    for key in REQUIRED + _OPTIONAL_TEXT + ("reference_audio",):
        if row.get(key) is not None and not isinstance(row[key], str):
            raise ValueError(f"'{key}' must be a string, got {type(row[key]).__name__}")
    src, tgt = row["source_lang"], row["target_lang"]
    if src not in LANGS or tgt not in LANGS or src == tgt:
        raise ValueError(f"unsupported direction {src!r} -> {tgt!r}; expected zh -> en or en -> zh")
    timings = row.get("timings") or {}
    if not isinstance(timings, dict):
        raise ValueError("'timings' must be an object {stage: seconds}")
    for stage in timings:
        _number(timings, stage)
    return RunItem(
        line=line,
        source_audio=_resolve(row["source_audio"], base),
        output_audio=_resolve(row["output_audio"], base),
        source_lang=src,
        target_lang=tgt,
        reference_text=row["reference_text"],
        output_text=row.get("output_text"),
        source_text=row.get("source_text"),
        transcript=row.get("transcript"),
        reference_audio=_resolve(row["reference_audio"], base) if row.get("reference_audio") else None,
        speaker=row.get("speaker"),
        emotion=row.get("emotion"),
        id=row.get("id"),
        wall_s=_number(row, "wall_s"),
        audio_s=_number(row, "audio_s"),
        timings={str(k): float(v) for k, v in timings.items()},
    )


def load_run(path: str | os.PathLike) -> tuple[list[RunItem], list[Skipped]]:
    """All valid lines and the skipped ones. An absent or empty manifest is a one-line error."""
    p = Path(path)
    if not p.is_file():
        raise RunManifestError(f"{p}: no such run manifest")
    items: list[RunItem] = []
    skipped: list[Skipped] = []
    seen_any = False
    with p.open(encoding="utf-8", errors="replace") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            seen_any = True
            try:
                row = json.loads(text)
            except ValueError as err:
                skipped.append(Skipped(number, f"not valid JSON ({str(err).splitlines()[0]})"))
                continue
            try:
                if not isinstance(row, dict):
                    raise ValueError(f"not a JSON object but a {type(row).__name__}")
                items.append(parse_row(row, number, p.parent))
            except ValueError as err:
                skipped.append(Skipped(number, str(err).splitlines()[0]))
    if not seen_any:
        raise RunManifestError(f"{p}: empty run manifest (no lines to score)")
    return items, skipped
