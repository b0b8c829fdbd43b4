"""`dragoman translate --manifest --devices 2` (two CPU processes, gloo) writes the run.jsonl and
wavs one process writes, and a run cut short, then resumed, ends with every line exactly once."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from dragoman.graphs.batch import translate_manifest
from dragoman.graphs.runtime import Graph
from dragoman.graphs.spec import load_spec
from dragoman.nodes.manifest import read_manifest

PAIRS = 7  # odd: the two shards differ in size
BROKEN = 3  # this pair's zh file is not audio: both runs must report it and go on
TIMING_FIELDS = ("wall_s", "timings")  # measure a run, not its result


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for k in range(PAIRS):
        for lang, f0 in (("zh", 140 + 15 * k), ("en", 230 - 10 * k)):
            seconds = 0.8 + 0.25 * k
            t = np.arange(int(16000 * seconds)) / 16000
            wav = 0.3 * np.sin(2 * np.pi * f0 * t) * (np.sin(2 * np.pi * 1.5 * t) > -0.4)  # speech-like bursts
            sf.write(root / f"p{k}_{lang}.wav", wav.astype(np.float32), 16000)
            rows.append({"audio_filepath": f"p{k}_{lang}.wav", "duration": seconds, "text": f"{lang} sentence {k}",
                         "lang": lang, "pair_id": k, "speaker": "s1", "emotion": "neutral"})
    (root / f"p{BROKEN}_zh.wav").write_bytes(b"not audio")
    (root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # The model-free segment graph (load -> VAD -> stitch), given the target_lang param that
    # --manifest runs set: deterministic, so one process and two must agree exactly.
    graph = Path(load_spec("segment").source).read_text().replace("params:\n", "params:\n  target_lang: en\n", 1)
    (root / "segment_en.yaml").write_text(graph)
    return root


def translate(corpus, out_dir, *extra):
    command = [sys.executable, "-m", "dragoman.graphs.cli", "translate", "--graph", "segment_en.yaml",
               "--manifest", "test.jsonl", "--source-lang", "zh", "--to", "en", "--out-dir", str(out_dir), "--json",
               *map(str, extra)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=corpus)
    assert out.returncode == 2, out.stderr[-3000:]  # 2: the broken file was reported
    return json.loads(out.stdout.strip().splitlines()[-1])


def comparable(row, out_dir):
    kept = {k: v for k, v in row.items() if k not in TIMING_FIELDS}
    kept["output_audio"] = str(kept["output_audio"]).removeprefix(str(out_dir) + "/")
    return kept


def test_two_processes_resumed_after_a_cut_match_one_process(corpus):
    # One process, through the same function `dragoman translate --manifest` calls.
    one = corpus / "one"
    graph = Graph.load(str(corpus / "segment_en.yaml")).setup()
    assert translate_manifest(graph, str(corpus / "test.jsonl"), "zh", "en", str(one))["done"] == PAIRS - 1

    two = corpus / "two"
    first = translate(corpus, two, "--devices", 2, "--limit", 4, "--strategy", "ddp_spawn")
    assert (first["done"], first["failed"], first["processes"], first["lines"]) == (3, 1, 2, 3)
    # What a kill can leave behind: a line written twice, and a last line torn mid-write (no
    # newline: the next append would otherwise glue a finished line onto it).
    run = two / "run.jsonl"
    lines = run.read_text().splitlines()
    run.write_text("\n".join([*lines, lines[0], lines[1][: len(lines[1]) // 2]]))

    second = translate(corpus, two, "--devices", 2)
    assert (second["done"], second["skipped"], second["failed"]) == (PAIRS - 1 - 3, 3, 1)
    assert (second["lines"], second["lost"]) == (PAIRS - 1, 0)

    reference, merged = read_manifest(one / "run.jsonl"), read_manifest(run)
    assert [r["id"] for r in merged] == [f"{k}_zh" for k in range(PAIRS) if k != BROKEN]
    assert [comparable(r, two) for r in merged] == [comparable(r, one) for r in reference]
    for row in reference:
        name = row["output_audio"].removeprefix(str(one) + "/")
        assert (one / name).read_bytes() == (two / name).read_bytes()
    errors = read_manifest(two / "errors.jsonl")
    assert {e["id"] for e in errors} == {f"{BROKEN}_zh"}


def test_devices_without_a_manifest_is_a_one_line_error(corpus):
    out = subprocess.run([sys.executable, "-m", "dragoman.graphs.cli", "translate", "p0_zh.wav", "-o", "x.wav",
                          "--graph", "segment_en.yaml", "--devices", "2"],
                         capture_output=True, text=True, timeout=300, cwd=corpus)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("dragoman: error: --devices")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without GPUs")
def test_gpus_asked_for_on_a_cpu_machine_is_a_one_line_error(corpus):
    command = [sys.executable, "-m", "dragoman.graphs.cli", "translate", "--graph", "segment_en.yaml",
               "--manifest", "test.jsonl", "--source-lang", "zh", "--to", "en", "--out-dir", "x",
               "--device", "cuda", "--devices", "2"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=corpus)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("dragoman: error: --device cuda --devices 2:")
    assert not (corpus / "x").exists()
