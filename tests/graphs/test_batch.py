"""Manifest translation: references from the pair, failures recorded, resumable without duplicates."""
import json

import numpy as np
import soundfile as sf

from dragoman.graphs.batch import plan, translate_manifest
from dragoman.graphs.runtime import Graph
from dragoman.nodes.manifest import read_manifest


def speechy(path, seconds, f0):
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * f0 * t) * (np.sin(2 * np.pi * 2 * t) > -0.5)).astype(np.float32), 16000)


def corpus(tmp_path):
    rows = []
    for k in range(3):
        for lang, f0 in (("zh", 150), ("en", 210)):
            path = tmp_path / f"p{k}_{lang}.wav"
            speechy(path, 1.0 + 0.3 * k, f0)
            rows.append({"audio_filepath": path.name, "duration": 1.0, "text": f"{lang} sentence {k}", "lang": lang,
                         "pair_id": k, "speaker": "s1", "emotion": "happy"})
    (tmp_path / "p1_zh.wav").write_bytes(b"corrupt")
    manifest = tmp_path / "test.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def test_plan_pairs_sources_with_references(tmp_path):
    jobs = plan(str(corpus(tmp_path)), "zh", "en")
    assert [j["id"] for j in jobs] == ["0_zh", "1_zh", "2_zh"]
    assert jobs[2]["reference_text"] == "en sentence 2" and jobs[2]["source_text"] == "zh sentence 2"
    assert jobs[0]["source_audio"] == str(tmp_path / "p0_zh.wav")


def test_bad_file_is_recorded_and_a_rerun_skips_finished_lines(tmp_path):
    manifest = corpus(tmp_path)
    graph = Graph.load("segment").setup()
    out = tmp_path / "run"
    first = translate_manifest(graph, str(manifest), "zh", "en", str(out))
    assert first == {"run": str(out / "run.jsonl"), "done": 2, "skipped": 0, "failed": 1}
    errors = read_manifest(out / "errors.jsonl")
    assert errors[0]["id"] == "1_zh" and "not a readable audio file" in errors[0]["error"]
    (tmp_path / "p1_zh.wav").unlink()
    speechy(tmp_path / "p1_zh.wav", 1.2, 150)  # the file is fixed; a re-run does only what is missing
    second = translate_manifest(graph, str(manifest), "zh", "en", str(out))
    assert second["done"] == 1 and second["skipped"] == 2
    lines = read_manifest(out / "run.jsonl")
    assert sorted(r["id"] for r in lines) == ["0_zh", "1_zh", "2_zh"]
    for row in lines:
        assert row["output_audio"] == f"wavs/{row['id']}.wav"
        assert sf.info(out / row["output_audio"]).frames > 0 and row["reference_text"].startswith("en sentence")


def test_a_torn_last_line_is_redone_not_glued(tmp_path):
    manifest = corpus(tmp_path)
    (tmp_path / "p1_zh.wav").unlink()
    speechy(tmp_path / "p1_zh.wav", 1.2, 150)
    graph = Graph.load("segment").setup()
    out = tmp_path / "run"
    translate_manifest(graph, str(manifest), "zh", "en", str(out), limit=2)
    run = out / "run.jsonl"
    text = run.read_text()
    run.write_text(text[: text.rindex('{"id"') + 40])  # killed while writing the second line
    translate_manifest(graph, str(manifest), "zh", "en", str(out))
    lines = read_manifest(run)
    assert sorted(r["id"] for r in lines) == ["0_zh", "1_zh", "2_zh"]
