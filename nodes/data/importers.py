"""Bring outside data into the corpus manifests (`dragoman data import`).

Text pairs (rendered through the TTS backend like the grammar corpus):
- TSV, UTF-8, tab-separated: `zh<TAB>en` with optional further columns `speaker`, `emotion`,
  `split`, `source_lang` in that order; or a header line naming the columns in any order (it must
  name `zh` and `en`). Blank lines and lines starting with `#` are ignored.
- JSONL: one object per line with "zh" and "en" and the same optional keys.
A line is malformed when a column is missing or empty, the zh side has no Han character, the en
side has no Latin letter or has Han characters, or it names an unknown speaker, emotion, split or
language; malformed lines are skipped and counted, and the first few are reported with their
line numbers. A pair whose zh or en text already appeared is skipped as a duplicate.

Corpora with audio (converted to 16 kHz mono wav, no rendering):
- CoVoST 2 TSV: header with at least `path`, `sentence` (source transcript) and `translation`;
  optional `split` (train/dev/test) and `client_id` (becomes `speaker`). Source clips are
  `AUDIO_DIR/<path>`.
- CVSS (-C or -T) target speech, optional: its TSV has no header, `path<TAB>translation` (the
  CoVoST path as key, translation normalised as spoken), audio `CVSS_AUDIO_DIR/<path>.wav`. With
  it every pair gets a target line and the duration-ratio filter applies; without it, only source
  lines are written (with their `translation`), for speech-to-text evaluation.
Rows whose audio is missing or unreadable are skipped, counted and reported.
"""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

from dragoman.nodes.data.build import CorpusBuilder, ensure_writable, make_casting, write_json
from dragoman.nodes.data.filters import HQ_RANGE, RATIO_RANGE, judge_durations, speech_duration
from dragoman.nodes.data.planning import DEFAULT_PROPORTIONS, SPLITS, ListPlanner
from dragoman.nodes.data.tts import EspeakBackend, TTSBackend
from dragoman.nodes.data.voices import DEFAULT_UNSEEN_SPEAKERS, EMOTIONS, SPEAKERS
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.manifest import write_manifest

PAIR_COLUMNS = ("zh", "en", "speaker", "emotion", "split", "source_lang")
REPORTED_BAD_LINES = 20


def _has_han(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def _check_pair(fields: dict) -> str:
    """'' for a good row, else the reason it is malformed."""
    zh, en = fields.get("zh", ""), fields.get("en", "")
    if not zh or not en:
        return "missing zh or en text"
    if not _has_han(zh):
        return "zh column has no Chinese characters"
    if _has_han(en) or not any("a" <= ch.lower() <= "z" for ch in en):
        return "en column is not English text"
    checks = (("speaker", SPEAKERS), ("emotion", EMOTIONS), ("split", SPLITS), ("source_lang", ("zh", "en")))
    for key, known in checks:
        if fields.get(key) and fields[key] not in known:
            return f"unknown {key} {fields[key]!r}"
    return ""


def _tsv_rows(path: Path):
    columns = list(PAIR_COLUMNS)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in line.split("\t")]
            if number == 1 and {"zh", "en"} <= {c.lower() for c in cells}:
                columns = [c.lower() for c in cells]
                continue
            if len(cells) < 2 or len(cells) > len(columns):
                yield number, None, f"expected 2 to {len(columns)} tab-separated columns, got {len(cells)}"
                continue
            yield number, {k: v for k, v in zip(columns, cells) if k in PAIR_COLUMNS and v}, ""


def _jsonl_rows(path: Path):
    with path.open(encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as err:
                yield number, None, f"not JSON ({str(err).splitlines()[0]})"
                continue
            if not isinstance(obj, dict):
                yield number, None, "not a JSON object"
                continue
            yield number, {k: str(obj[k]).strip() for k in PAIR_COLUMNS if obj.get(k) not in (None, "")}, ""


def read_text_pairs(path: str | os.PathLike) -> tuple[list[tuple[str, str, dict]], list[tuple[int, str]], int]:
    """(rows as (zh, en, fields), malformed (line, reason), duplicates) of a TSV or JSONL file."""
    p = Path(path)
    if not p.is_file():
        raise DragomanError(f"{p}: no such file")
    reader = _jsonl_rows if p.suffix.lower() in (".jsonl", ".json") else _tsv_rows
    rows, bad, duplicates, seen_zh, seen_en = [], [], 0, set(), set()
    try:
        for number, fields, reason in reader(p):
            reason = reason or _check_pair(fields)
            if reason:
                bad.append((number, reason))
                continue
            if fields["zh"] in seen_zh or fields["en"] in seen_en:
                duplicates += 1
                continue
            seen_zh.add(fields["zh"])
            seen_en.add(fields["en"])
            rows.append((fields["zh"], fields["en"], {k: v for k, v in fields.items() if k not in ("zh", "en")}))
    except UnicodeDecodeError:
        raise DragomanError(f"{p}: not UTF-8 text") from None
    return rows, bad, duplicates


def import_text_pairs(path, out_dir, seed: int = 0, jobs: int = 1, proportions=None, speakers=None,
                      unseen_speakers=DEFAULT_UNSEEN_SPEAKERS, emotions=None, backend: TTSBackend | None = None,
                      progress: bool = True) -> dict:
    """Render a user's zh/en pairs into split manifests, like `build_corpus` does for the grammar."""
    rows, bad, duplicates = read_text_pairs(path)
    if not rows:
        raise DragomanError(f"{path}: no usable zh/en pairs ({len(bad)} malformed lines)")
    casting = make_casting(seed, speakers, unseen_speakers, emotions)
    backend = backend or EspeakBackend()
    named = {f["speaker"] for _, _, f in rows if f.get("speaker")}
    backend.check(sorted({v for vs in casting.voices.values() for v in vs} | {SPEAKERS[n] for n in named},
                         key=lambda s: s.name))
    planner = ListPlanner(rows, seed, proportions or DEFAULT_PROPORTIONS, casting, SPEAKERS, EMOTIONS)
    builder = CorpusBuilder(out_dir, backend, jobs, progress=progress)
    meta = {"source": f"pairs:{Path(path).resolve()}", "seed": seed, "pairs_read": len(rows),
            "malformed_lines": len(bad), "malformed_examples": [f"line {n}: {r}" for n, r in bad[:REPORTED_BAD_LINES]],
            "duplicate_lines": duplicates}
    return builder.build(planner, planner.sizes, meta)


def _lang(code: str) -> str:
    code = code.lower()
    if code.startswith("zh") or code == "cmn":
        return "zh"
    if code.startswith("en") or code == "eng":
        return "en"
    raise DragomanError(f"unsupported language {code!r} (zh or en)")


def _convert(src: Path, dst: Path) -> tuple[float, float]:
    """Write a 16 kHz mono copy of `src` at `dst` (kept if already there, so a re-run resumes);
    returns its (duration, speech duration) in seconds."""
    from dragoman.nodes.audio.io import SAMPLE_RATE, read_audio, write_audio

    if not dst.exists():
        write_audio(dst, read_audio(src))
    import soundfile as sf

    wav, _ = sf.read(str(dst), dtype="float32")
    return len(wav) / SAMPLE_RATE, speech_duration(wav, SAMPLE_RATE)


def read_covost(tsv: str | os.PathLike) -> tuple[list[dict], list[tuple[int, str]]]:
    """Rows of a CoVoST 2 TSV (header required) and its malformed lines."""
    p = Path(tsv)
    if not p.is_file():
        raise DragomanError(f"{p}: no such file")
    rows, bad = [], []
    with p.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = {"path", "sentence", "translation"} - set(header)
        if missing:
            raise DragomanError(f"{p}: not a CoVoST TSV (header lacks {', '.join(sorted(missing))})")
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                bad.append((number, f"expected {len(header)} columns, got {len(cells)}"))
                continue
            row = {k: v.strip() for k, v in zip(header, cells)}
            if not (row["path"] and row["sentence"] and row["translation"]):
                bad.append((number, "empty path, sentence or translation"))
                continue
            if row.get("split") and row["split"] not in SPLITS:
                bad.append((number, f"unknown split {row['split']!r}"))
                continue
            rows.append(row)
    return rows, bad


def read_cvss(tsv: str | os.PathLike) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """CVSS TSV `path<TAB>translation` (no header) as {path: text}, and its malformed lines."""
    p = Path(tsv)
    if not p.is_file():
        raise DragomanError(f"{p}: no such file")
    out, bad = {}, []
    with p.open(encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            cells = line.rstrip("\r\n").split("\t")
            if len(cells) != 2 or not cells[0].strip() or not cells[1].strip():
                bad.append((number, f"expected path<TAB>translation, got {len(cells)} columns"))
                continue
            out[cells[0].strip()] = cells[1].strip()
    return out, bad


def import_covost(covost_tsv, audio_dir, out_dir, src_lang: str, cvss_tsv=None, cvss_audio_dir=None,
                  split: str = "train", progress: bool = True) -> dict:
    """Convert a CoVoST (+ CVSS) corpus into `<split>.jsonl` manifests under `out_dir`."""
    from tqdm import tqdm

    started = time.perf_counter()
    src, tgt = _lang(src_lang), "en" if _lang(src_lang) == "zh" else "zh"
    if split not in SPLITS:
        raise DragomanError(f"unknown split {split!r} (splits: {', '.join(SPLITS)})")
    if cvss_tsv and not cvss_audio_dir:
        raise DragomanError("a CVSS TSV needs its audio folder too (--cvss-audio-dir)")
    out = ensure_writable(Path(out_dir))
    rows, bad = read_covost(covost_tsv)
    targets, cvss_bad = read_cvss(cvss_tsv) if cvss_tsv else ({}, [])
    bad = [(f"{Path(covost_tsv).name}:{n}", r) for n, r in bad]
    bad += [(f"{Path(cvss_tsv).name}:{n}", r) for n, r in cvss_bad]
    manifests = {s: [] for s in SPLITS}
    counts = {"pairs": 0, "source_only": 0, "bad_audio": 0, "duration_ratio": 0, "no_target": 0}
    problems = []
    for row in tqdm(rows, desc="importing", unit="row", disable=not progress, leave=False):
        stem = Path(row["path"]).name.rsplit(".", 1)[0]
        row_split = row.get("split") or split
        wav_dir = out / "wavs" / row_split
        base = {"speaker": row.get("client_id", "") or "unknown", "emotion": "unknown",
                "pair_id": f"{row_split}-{stem}", "split": row_split, "source_lang": src}
        try:
            dur, speech = _convert(Path(audio_dir) / row["path"], wav_dir / f"{stem}_{src}.wav")
            target_text = targets.get(row["path"])
            if cvss_tsv and target_text is None:
                counts["no_target"] += 1
                continue
            if target_text is not None:
                tdur, tspeech = _convert(Path(cvss_audio_dir) / f"{row['path']}.wav",
                                         wav_dir / f"{stem}_{tgt}.wav")
        except DragomanError as err:
            counts["bad_audio"] += 1
            problems.append(str(err))
            continue
        source_line = {"audio_filepath": str(wav_dir / f"{stem}_{src}.wav"), "duration": round(dur, 4),
                       "text": row["sentence"], "lang": src, **base, "translation": target_text or row["translation"],
                       "speech_duration": round(speech, 4)}
        if target_text is None:
            manifests[row_split].append(source_line | {"hq": False})
            counts["source_only"] += 1
            continue
        verdict = judge_durations(dur, tdur, speech, tspeech, RATIO_RANGE, HQ_RANGE)
        if not verdict.keep:
            counts["duration_ratio"] += 1
            continue
        ratios = {"hq": verdict.hq, "duration_ratio": round(verdict.ratio, 4),
                  "speech_ratio": round(verdict.speech_ratio, 4)}
        target_line = {"audio_filepath": str(wav_dir / f"{stem}_{tgt}.wav"), "duration": round(tdur, 4),
                       "text": target_text, "lang": tgt, **base, "translation": row["sentence"],
                       "speech_duration": round(tspeech, 4)}
        pair = [source_line | ratios, target_line | ratios]
        manifests[row_split] += sorted(pair, key=lambda r: r["lang"] != "zh")
        counts["pairs"] += 1
    written = []
    for s, lines in manifests.items():
        if lines:
            written.append(str(write_manifest(out / f"{s}.jsonl", lines)))
    report = {"source": f"covost:{Path(covost_tsv).resolve()}", "src_lang": src, "rows": len(rows), **counts,
              "malformed_lines": len(bad), "malformed_examples": [f"{n}: {r}" for n, r in bad[:REPORTED_BAD_LINES]],
              "audio_problems": problems[:REPORTED_BAD_LINES], "manifests": written,
              "seconds": round(time.perf_counter() - started, 2)}
    write_json(out / "import_report.json", report)
    return report
