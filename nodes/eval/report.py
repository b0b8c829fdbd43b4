"""The report folder of `dragoman eval -o DIR`: report.md, per_utterance.csv, summary.json, plots.

report.md holds the metric table (all / zh-en / en-zh), the reference points from the UniSS
paper (CVSS-T, quality mode) for scale, the settings that produced the numbers, the notes and
the skipped lines. per_utterance.csv has one row per scored utterance, for finding the worst.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from dragoman.nodes.eval import text_bleu
from dragoman.nodes.eval.run_manifest import DIRECTIONS
from dragoman.nodes.eval.scoring import DIRECTION_KEYS, EvalResult
from dragoman.nodes.eval.timing import within

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
    from dragoman.nodes.eval.plots import write_plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(result, out, n_examples)
    write_csv(result, out / "per_utterance.csv")
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
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
