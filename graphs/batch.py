"""Translating a corpus manifest into a run directory that `dragoman eval` scores.

`D/run.jsonl` gets one line per utterance, appended (and fsynced) only after its wav is written,
so an interrupted run loses nothing and a re-run skips what is done; failures go to
`D/errors.jsonl` with the reason and the run continues.
"""
from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from dragoman.nodes.errors import DragomanError
from dragoman.nodes.manifest import append_row, drop_torn_tail, iter_manifest, read_manifest


def plan(manifest: str, source_lang: str, target_lang: str) -> list[dict]:
    """Lines of `source_lang` with their pair's `target_lang` side as the reference."""
    rows = read_manifest(manifest)
    base = Path(manifest).resolve().parent
    by_pair = {(str(r.get("pair_id")), r.get("lang")): r for r in rows}
    jobs = []
    for number, row in enumerate(rows, start=1):
        if row.get("lang") != source_lang:
            continue
        ref = by_pair.get((str(row.get("pair_id")), target_lang))
        audio = Path(row["audio_filepath"])
        jobs.append({
            "id": f"{row.get('pair_id', number)}_{source_lang}",
            "source_audio": str(audio if audio.is_absolute() else base / audio),
            "source_lang": source_lang,
            "target_lang": target_lang,
            "source_text": row.get("text"),
            "reference_text": ref.get("text") if ref else None,
            "reference_audio": ref.get("audio_filepath") if ref else None,
            "speaker": row.get("speaker"),
            "emotion": row.get("emotion"),
        })
    return jobs


def done_ids(run_path: Path) -> set[str]:
    if not run_path.is_file():
        return set()
    return {str(row.get("id")) for row in iter_manifest(run_path, skip_bad=True)}


def translate_manifest(graph, manifest: str, source_lang: str, target_lang: str, out_dir: str,
                       limit: int | None = None, shard: tuple[int, int] = (0, 1)) -> dict:
    from dragoman.graphs.commands.translate import translate_one

    out = Path(out_dir)
    run_path, errors_path = out / "run.jsonl", out / "errors.jsonl"
    jobs = plan(manifest, source_lang, target_lang)[:limit]
    rank, world = shard
    jobs = jobs[rank::world]
    drop_torn_tail(run_path)  # a killed run may have left half a line: that utterance is redone
    finished = done_ids(run_path)
    done = failed = 0
    for job in tqdm(jobs, desc=f"translate {source_lang}->{target_lang}", unit="utt"):
        if job["id"] in finished:
            continue
        if job["reference_text"] is None:
            append_row(errors_path, {"id": job["id"], "error": "no reference on the other side of the pair"})
            failed += 1
            continue
        wav = out / "wavs" / f"{job['id']}.wav"
        try:
            report = translate_one(graph, job["source_audio"], wav, target_lang)
        except DragomanError as err:
            append_row(errors_path, {"id": job["id"], "source_audio": job["source_audio"], "error": str(err)})
            failed += 1
            continue
        # Relative to run.jsonl, which is how `dragoman eval` resolves it: the run folder can be
        # moved, and a relative --out-dir no longer doubles the prefix.
        append_row(run_path, {
            **job, "output_audio": str(wav.relative_to(out)), "output_text": report["translation"], "transcript": report["transcript"],
            "wall_s": report["wall_s"], "audio_s": report["source_duration_s"], "timings": report["timings_s"],
        })
        done += 1
    return {"run": str(run_path), "done": done, "skipped": len(jobs) - done - failed, "failed": failed}
