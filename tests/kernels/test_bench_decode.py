"""`dragoman bench decode`: the JSON contract, consistent numbers, one-line errors (tiny shape)."""
import json

import pytest

from dragoman.graphs.cli import main

TINY = ["--tokens", "6", "--prompt-tokens", "5", "--repeats", "2", "--layers", "1", "--hidden", "32",
        "--heads", "2", "--kv-heads", "1", "--intermediate", "64", "--vocab", "128"]


def test_json_report(capsys):
    assert main(["bench", "decode", "--json", *TINY]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("ours_tok_s", "hf_tok_s", "ratio", "device", "batch", "shape", "dtype", "tokens_match"):
        assert key in result
    assert result["shape"] == dict(layers=1, hidden=32, heads=2, kv_heads=1, intermediate=64, vocab=128)
    assert result["batch"] == 1 and result["new_tokens"] == 6 and result["dtype"] == "float32"
    assert result["ours_tok_s"] > 0 and result["hf_tok_s"] > 0
    assert result["ratio"] == pytest.approx(result["ours_tok_s"] / result["hf_tok_s"], rel=0.02)
    assert result["tokens_match"] is True  # same model, same prompt, greedy: same tokens
    assert result["device"].startswith("cpu")


def test_text_report(capsys):
    assert main(["bench", "decode", *TINY, "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "batch 2" in out and "ratio (ours / HF)" in out


@pytest.mark.parametrize(
    "args,message",
    [(["--heads", "3"], "--heads 3"), (["--kv-heads", "3"], "--kv-heads 3"),
     (["--preset", "nope"], "unknown --preset"), (["--dtype", "int8"], "--dtype"),
     (["--tokens", "0"], "--tokens"), (["--threads", "0"], "--threads")],
)
def test_bad_options_are_one_line_errors(capsys, args, message):
    assert main(["bench", "decode", *TINY, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dragoman: error: bench decode:") and message in err[0]


def test_bench_without_a_benchmark_prints_help(capsys):
    assert main(["bench"]) == 0
    assert "decode" in capsys.readouterr().out
