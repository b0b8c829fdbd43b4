"""The report folder of `dragoman eval -o DIR`: report.md, per_utterance.csv, summary.json, plots.

report.md holds the metric table (all / zh-en / en-zh), the reference points from the UniSS
paper (CVSS-T, quality mode) for scale, the settings that produced the numbers, the notes and
the skipped lines. per_utterance.csv has one row per scored utterance, for finding the worst.
Figures (matplotlib, Agg backend, ASCII text only so no CJK font is needed):
- `example_line<N>.png`: spectrogram with the F0 track on top, source above output, on one
  time axis so a length mismatch is visible at a glance;
- `duration_ratio.png`: histogram of dur_out / dur_src per direction with the SLC bands;
- `speaker_similarity.png`: histogram of per-utterance speaker similarity with the same- and
  different-speaker baselines marked, the scale that makes the number meaningful.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from dragoman.nodes.audio.io import SAMPLE_RATE, read_audio
from dragoman.nodes.eval import text_bleu
from dragoman.nodes.eval.pitch import track_pitch
from dragoman.nodes.eval.prosody import within
from dragoman.nodes.eval.run_manifest import DIRECTIONS
from dragoman.nodes.eval.scoring import DIRECTION_KEYS, EvalResult, UtteranceScore

# UniSS paper, CVSS-T test, quality mode (DESIGN §9): {metric: {direction: value}}.
PAPER_UNISS = {
    "speech_bleu": {"en-zh": 32.20, "zh-en": 24.28},
    "text_bleu": {"en-zh": 32.95, "zh-en": 26.28},
    "slc_0.2": {"en-zh": 0.98, "zh-en": 0.87},
    "slc_0.4": {"en-zh": 0.99, "zh-en": 0.97},
}
_LABELS = {
    "text_bleu": "Text-BLEU", "speech_bleu": "Speech-BLEU", "slc_0.2": "SLC 0.2", "slc_0.4": "SLC 0.4",
    "speaker_sim": "speaker similarity", "emotion_agreement": "emotion agreement",
    "f0_corr": "F0 correlation", "energy_corr": "energy correlation", "rtf": "real-time factor",
    "n_scored": "utterances scored",
}
CSV_COLUMNS = ("line", "id", "direction", "source_audio", "output_audio", "source_s", "output_s",
               "duration_ratio", "slc_0.2", "slc_0.4", "text_sentence_bleu", "asr_text",
               "speech_sentence_bleu", "speaker_sim", "f0_corr", "energy_corr", "source_emotion",
               "output_emotion", "wall_s", "rtf")


# -- figures ---------------------------------------------------------------------------------
_COLORS = {"zh-en": "tab:blue", "en-zh": "tab:orange"}
_SPEC_MAX_HZ = 4000


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_spectrogram(wav: np.ndarray, n_fft: int = 512, hop: int = 160) -> np.ndarray:
    """[freq, frames] magnitude in dB, Hann window, clipped 80 dB under the peak."""
    if len(wav) < n_fft:
        wav = np.pad(wav, (0, n_fft - len(wav)))
    frames = np.lib.stride_tricks.sliding_window_view(wav, n_fft)[::hop] * np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=1)).T
    db = 20 * np.log10(mag + 1e-9)
    return np.maximum(db, db.max() - 80)


def plot_example(score: UtteranceScore, path: Path) -> Path:
    plt = _pyplot()
    wavs = [read_audio(score.item.source_audio).numpy(), read_audio(score.item.output_audio).numpy()]
    longest = max(len(w) for w in wavs) / SAMPLE_RATE
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    src, tgt = score.item.direction.split("-")
    tracks = [track_pitch(w) for w in wavs]
    voiced = np.concatenate([t.f0[t.voiced] for t in tracks])
    # One F0 scale for both panels, fitted to the voices so intonation is visible.
    f0_lo, f0_hi = (0.8 * voiced.min(), 1.25 * voiced.max()) if len(voiced) else (50.0, 500.0)
    for ax, wav, track, label in zip(axes, wavs, tracks, (f"source ({src})", f"output ({tgt})")):
        spec = _log_spectrogram(wav)
        keep = int(spec.shape[0] * _SPEC_MAX_HZ / (SAMPLE_RATE / 2))
        ax.imshow(spec[:keep], origin="lower", aspect="auto", cmap="magma",
                  extent=(0, len(wav) / SAMPLE_RATE, 0, _SPEC_MAX_HZ))
        ax.set_ylabel("frequency (Hz)")
        ax.set_title(f"{label}: {len(wav) / SAMPLE_RATE:.2f} s", loc="left", fontsize=10)
        f0 = np.where(track.voiced, track.f0, np.nan)
        twin = ax.twinx()
        twin.plot(track.times, f0, color="cyan", linewidth=2, label="F0")
        twin.set_ylim(f0_lo, f0_hi)
        twin.set_ylabel("F0 (Hz)", color="tab:cyan")
        ax.set_xlim(0, longest)
    axes[-1].set_xlabel("time (s)")

    def fmt(v):
        return "n/a" if v is None else f"{v:.2f}"

    fig.suptitle(f"line {score.item.line} ({score.item.direction}): duration ratio {score.ratio:.2f}, "
                 f"speaker sim {fmt(score.speaker_sim)}, F0 corr {fmt(score.f0_corr)}, "
                 f"energy corr {fmt(score.energy_corr)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_duration_ratios(scores: Sequence[UtteranceScore], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ratios = np.asarray([s.ratio for s in scores])
    hi = max(2.0, float(np.percentile(ratios, 99)) + 0.1)
    bins = np.linspace(0.0, hi, 41)
    ax.axvspan(0.6, 1.4, color="tab:green", alpha=0.08, label="SLC 0.4 band")
    ax.axvspan(0.8, 1.2, color="tab:green", alpha=0.18, label="SLC 0.2 band")
    for d in DIRECTIONS:
        r = [s.ratio for s in scores if s.item.direction == d]
        if r:
            ax.hist(np.clip(r, 0, hi), bins=bins, alpha=0.6, color=_COLORS[d], label=f"{d} (n={len(r)})")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel("output duration / source duration")
    ax.set_ylabel("utterances")
    ax.set_title("Duration ratio (values beyond the axis are drawn at its end)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_speaker_similarity(scores: Sequence[UtteranceScore], same: float | None, diff: float | None,
                            judge: str, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(-0.2, 1.0, 49)
    for d in DIRECTIONS:
        sims = [s.speaker_sim for s in scores if s.item.direction == d and s.speaker_sim is not None]
        if sims:
            ax.hist(sims, bins=bins, alpha=0.6, color=_COLORS[d], label=f"source vs output, {d}")
    for value, label, style in ((same, "same speaker (sources)", "-"), (diff, "different speakers (sources)", "--")):
        if value is not None:
            ax.axvline(value, color="black", linestyle=style, label=f"{label}: {value:.2f}")
    ax.set_xlabel(f"cosine similarity ({judge})")
    ax.set_ylabel("utterances")
    ax.set_title("Speaker similarity")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(result: EvalResult, out_dir: Path, n_examples: int = 3) -> list[Path]:
    """All figures of a report; examples are the first `n_examples` scored lines."""
    out_dir.mkdir(parents=True, exist_ok=True)
    s = result.summary
    paths = [
        plot_duration_ratios(result.utterances, out_dir / "duration_ratio.png"),
        plot_speaker_similarity(result.utterances, s["speaker_sim_same"], s["speaker_sim_diff"],
                                s["speaker_judge"]["name"], out_dir / "speaker_similarity.png"),
    ]
    for score in result.utterances[:n_examples]:
        paths.append(plot_example(score, out_dir / f"example_line{score.item.line}.png"))
    return paths


# -- text ------------------------------------------------------------------------------------
def _fmt(value, key: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if "bleu" in key:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _table(summary: dict) -> list[str]:
    rows = ["| metric | all | zh-en | en-zh | UniSS paper (zh-en / en-zh) |", "|---|---|---|---|---|"]
    for key in DIRECTION_KEYS:
        overall = summary["n_scored"] if key == "n_scored" else summary[key]
        per = [summary["by_direction"][d][key] for d in DIRECTIONS]
        paper = PAPER_UNISS.get(key)
        ref = f"{_fmt(paper['zh-en'], key)} / {_fmt(paper['en-zh'], key)}" if paper else ""
        rows.append(f"| {_LABELS[key]} | {_fmt(overall, key)} | {_fmt(per[0], key)} | {_fmt(per[1], key)} | {ref} |")
    return rows


def render_markdown(result: EvalResult, plots: list[Path]) -> str:
    s = result.summary
    judge = s["speaker_judge"]
    lines = [
        "# dragoman eval report",
        "",
        f"Run manifest: `{result.manifest}`: {s['n_scored']} utterance(s) scored, {s['n_skipped']} skipped.",
        "",
        *_table(s),
        "",
        f"Speaker similarity baselines on the source recordings ({judge['name']}"
        f"{'' if judge['independent'] else ', NOT independent of the system'}): "
        f"same speaker {_fmt(s['speaker_sim_same'])}, different speakers {_fmt(s['speaker_sim_diff'])}. "
        "A source-output similarity near the same-speaker value means the voice was kept.",
        "",
    ]
    if s["timings"]:
        lines += ["## Timings", "", "| stage | total s | mean s | RTF | n |", "|---|---|---|---|---|"]
        for stage, t in s["timings"].items():
            lines.append(f"| {stage} | {t['total_s']:.2f} | {t['mean_s']:.3f} | {_fmt(t['rtf'])} | {t['n']} |")
        lines.append("")
    if s["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in s["notes"]] + [""]
    lines += ["## Settings", "", "```json", json.dumps(s["settings"], indent=2, ensure_ascii=False), "```", ""]
    if s["skipped"]:
        lines += ["## Skipped lines", ""] + [f"- line {k['line']}: {k['reason']}" for k in s["skipped"]] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    return "\n".join(lines)


def write_csv(result: EvalResult, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for u in result.utterances:
            item, lang = u.item, u.item.target_lang
            writer.writerow({
                "line": item.line, "id": item.id, "direction": item.direction,
                "source_audio": item.source_audio, "output_audio": item.output_audio,
                "source_s": f"{u.source_s:.3f}", "output_s": f"{u.output_s:.3f}",
                "duration_ratio": f"{u.ratio:.4f}",
                "slc_0.2": within(u.ratio, 0.2), "slc_0.4": within(u.ratio, 0.4),
                "text_sentence_bleu": None if item.output_text is None
                else f"{text_bleu.sentence_bleu(item.output_text, item.reference_text, lang):.2f}",
                "asr_text": u.asr_text,
                "speech_sentence_bleu": None if u.asr_text is None
                else f"{text_bleu.sentence_bleu(u.asr_text, item.reference_text, lang):.2f}",
                "speaker_sim": None if u.speaker_sim is None else f"{u.speaker_sim:.4f}",
                "f0_corr": None if u.f0_corr is None else f"{u.f0_corr:.4f}",
                "energy_corr": None if u.energy_corr is None else f"{u.energy_corr:.4f}",
                "source_emotion": u.source_emotion, "output_emotion": u.output_emotion,
                "wall_s": item.wall_s, "rtf": None if item.wall_s is None else f"{item.wall_s / u.source_s:.4f}",
            })
    return path


def write_report(result: EvalResult, out_dir: str | Path, n_examples: int = 3) -> Path:
    """Write the whole report folder; returns the path of report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(result, out, n_examples)
    write_csv(result, out / "per_utterance.csv")
    summary = json.dumps(result.summary, indent=2, ensure_ascii=False, allow_nan=False)
    (out / "summary.json").write_text(summary + "\n", encoding="utf-8")
    md = out / "report.md"
    md.write_text(render_markdown(result, plots), encoding="utf-8")
    return md


def render_text(summary: dict) -> str:
    """The short console table `dragoman eval` prints without --json."""
    lines = [f"{'metric':<20} {'all':>9} {'zh-en':>9} {'en-zh':>9}"]
    for key in DIRECTION_KEYS:
        overall = summary["n_scored"] if key == "n_scored" else summary[key]
        per = [summary["by_direction"][d][key] for d in DIRECTIONS]
        lines.append(f"{_LABELS[key]:<20} {_fmt(overall, key):>9} {_fmt(per[0], key):>9} {_fmt(per[1], key):>9}")
    lines.append(f"speaker baselines ({summary['speaker_judge']['name']}): same {_fmt(summary['speaker_sim_same'])}, "
                 f"different {_fmt(summary['speaker_sim_diff'])}")
    lines += [f"note: {n}" for n in summary["notes"]]
    return "\n".join(lines)
