"""Corpus statistics and plots (`dragoman data stats`).

The prosody measures are the ones that show whether emotions and speakers differ on the audio:
mean F0 over voiced frames, F0 spread (90th - 10th percentile), loudness (RMS dB over speech) and
speaking rate (speech seconds per text unit: characters for zh, words for en). F0 comes from the
evaluation suite's vectorised YIN tracker, a few milliseconds per utterance.
"""
from __future__ import annotations

import os
import random
from collections import defaultdict
from pathlib import Path

import numpy as np

from dragoman.nodes.data.filters import speech_bounds
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.manifest import read_manifest



def voiced_f0(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """F0 in Hz of the voiced 10 ms frames (YIN, `dragoman.nodes.eval.pitch`)."""
    from dragoman.nodes.eval.pitch import track_pitch

    track = track_pitch(wav, sample_rate)
    return track.f0[track.voiced]


def text_units(text: str, lang: str) -> int:
    """Characters (zh, punctuation excluded) or words (en): the denominator of speaking rate."""
    if lang == "zh":
        return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    return len(text.split())


def utterance_prosody(wav: np.ndarray, sample_rate: int, text: str = "", lang: str = "en") -> dict:
    start, end = speech_bounds(wav, sample_rate)
    speech = wav[start:end]
    f0 = voiced_f0(wav, sample_rate)
    seconds = (end - start) / sample_rate
    units = text_units(text, lang) if text else 0
    return {
        "f0_mean": float(f0.mean()) if f0.size else float("nan"),
        "f0_spread": float(np.percentile(f0, 90) - np.percentile(f0, 10)) if f0.size else float("nan"),
        "rms_db": float(20 * np.log10(np.sqrt(np.mean(speech ** 2)) + 1e-9)) if speech.size else float("-inf"),
        "seconds_per_unit": seconds / units if units else float("nan"),
    }


def _mean(values) -> float:
    values = [v for v in values if np.isfinite(v)]
    return round(float(np.mean(values)), 3) if values else float("nan")


def summarize(rows: list[dict], max_f0: int = 400, progress: bool = True) -> tuple[dict, dict]:
    """(summary, per-utterance prosody by row index). Prosody is measured on at most `max_f0`
    utterances drawn at random (seeded) from the manifest."""
    from tqdm import tqdm

    from dragoman.nodes.audio.io import read_audio

    if not rows:
        raise DragomanError("manifest has no utterances")
    hours = defaultdict(float)
    for r in rows:
        hours[r.get("lang", "?")] += float(r.get("duration", 0.0)) / 3600
    pairs = {}
    for r in rows:
        if "pair_id" in r:
            pairs.setdefault(r["pair_id"], r)
    summary = {
        "utterances": len(rows), "pairs": len(pairs),
        "hours": round(sum(hours.values()), 4), "hours_per_lang": {k: round(v, 4) for k, v in sorted(hours.items())},
        "splits": dict(sorted(_count(rows, "split").items())),
        "speakers": dict(sorted(_count(rows, "speaker").items())),
        "emotions": dict(sorted(_count(rows, "emotion").items())),
        "hq_share": round(sum(bool(p.get("hq")) for p in pairs.values()) / max(1, len(pairs)), 4),
    }
    durations = defaultdict(list)
    for r in rows:
        durations[r.get("lang", "?")].append(float(r.get("duration", 0.0)))
    summary["duration_seconds"] = {
        lang: {"mean": round(float(np.mean(d)), 3), "min": round(float(np.min(d)), 3), "max": round(float(np.max(d)), 3)}
        for lang, d in sorted(durations.items())}
    ratios = [float(p["duration_ratio"]) for p in pairs.values() if "duration_ratio" in p]
    if ratios:
        summary["duration_ratio"] = {"mean": round(float(np.mean(ratios)), 3),
                                     "p05": round(float(np.percentile(ratios, 5)), 3),
                                     "p95": round(float(np.percentile(ratios, 95)), 3)}
    # A seeded sample, not every k-th line: manifests alternate zh/en lines, so a stride of 2, 4, ...
    # would measure one language only.
    chosen = sorted(random.Random(0).sample(range(len(rows)), min(max_f0, len(rows))))
    prosody = {}
    for i in tqdm(chosen, desc="prosody", unit="utt", disable=not progress, leave=False):
        r = rows[i]
        try:
            wav = read_audio(r["audio_filepath"]).numpy()
        except (DragomanError, KeyError):
            continue
        prosody[i] = utterance_prosody(wav, 16000, r.get("text", ""), r.get("lang", "en"))
    for key in ("emotion", "speaker"):
        groups = defaultdict(list)
        for i, p in prosody.items():
            groups[rows[i].get(key, "?")].append(p)
        summary[f"prosody_per_{key}"] = {
            g: {m: _mean(p[m] for p in ps) for m in ("f0_mean", "f0_spread", "rms_db", "seconds_per_unit")}
            | {"utterances": len(ps)} for g, ps in sorted(groups.items())}
    return summary, prosody


def _count(rows, key) -> dict:
    out = defaultdict(int)
    for r in rows:
        if key in r:
            out[str(r[key])] += 1
    return out


def plot(rows: list[dict], prosody: dict, out_dir: Path) -> list[Path]:
    """Four PNGs: durations per language, F0 per emotion, F0 per speaker, duration-ratio histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []

    def save(fig, name):
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(7, 4))
    for lang in sorted({r.get("lang", "?") for r in rows}):
        ax.hist([r["duration"] for r in rows if r.get("lang") == lang], bins=40, alpha=0.6, label=lang)
    ax.set(xlabel="duration (s)", ylabel="utterances", title="Durations per language")
    ax.legend()
    save(fig, "durations.png")

    for key in ("emotion", "speaker"):
        groups = defaultdict(list)
        for i, p in prosody.items():
            if np.isfinite(p["f0_mean"]):
                groups[rows[i].get(key, "?")].append(p["f0_mean"])
        fig, ax = plt.subplots(figsize=(max(5, len(groups) * 0.7), 4))
        names = sorted(groups)
        if names:
            ax.boxplot([groups[n] for n in names])
            ax.set_xticks(range(1, len(names) + 1), names, rotation=45 if len(names) > 6 else 0)
        ax.set(ylabel="mean F0 (Hz)", title=f"F0 per {key}")
        save(fig, f"f0_per_{key}.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    seen, ratios = set(), []
    for r in rows:
        if "duration_ratio" in r and r.get("pair_id") not in seen:
            seen.add(r.get("pair_id"))
            ratios.append(r["duration_ratio"])
    ax.hist(ratios, bins=40)
    for x in (0.5, 0.7, 1.5, 2.0):
        ax.axvline(x, color="grey", linestyle="--", linewidth=0.8)
    ax.set(xlabel="target / source duration", ylabel="pairs", title="Duration ratio (filter 0.5-2.0, hq 0.7-1.5)")
    save(fig, "duration_ratio.png")
    return written


def corpus_stats(manifest: str | os.PathLike, out_dir: str | os.PathLike, max_f0: int = 400,
                 progress: bool = True) -> dict:
    """Summary + plots of one manifest into `out_dir` (summary.json and four PNGs)."""
    from dragoman.nodes.data.build import ensure_writable, write_json

    rows = read_manifest(manifest)
    out = ensure_writable(Path(out_dir))
    summary, prosody = summarize(rows, max_f0=max_f0, progress=progress)
    summary["manifest"] = str(Path(manifest).resolve())
    summary["plots"] = [str(p) for p in plot(rows, prosody, out)]
    write_json(out / "summary.json", summary)
    return summary
