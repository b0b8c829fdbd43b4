#!/usr/bin/env bash
# Translate and score the default model per split, direction and mode, then print the README's
# "Translation results" table (markdown). Every cell is `dragoman translate --manifest` followed
# by `dragoman eval` on its run.jsonl; both are resumable, so an interrupted run continues.
#   bash examples/eval_default_model.sh [LIMIT [SPLITS [MODES]]]
#   bash examples/eval_default_model.sh 40 "test test_unseen_speakers" "quality performance direct"
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-40}
SPLITS=${2:-"test test_unseen_speakers"}
MODES=${3:-"quality performance direct"}
DRAGOMAN=${DRAGOMAN:-.venv/bin/dragoman}
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/eval}

for split in $SPLITS; do
  for mode in $MODES; do
    for src in zh en; do
      tgt=$([ "$src" = zh ] && echo en || echo zh)
      dir="$OUT/$split/$src-$tgt-$mode"
      mkdir -p "$OUT/$split"
      $DRAGOMAN translate --manifest "data/corpus/$split.jsonl" --source-lang "$src" --to "$tgt" --graph "$mode" \
        --out-dir "$dir" --limit "$LIMIT" >"$dir.translate.log" 2>&1 || { echo "translate failed: $dir.translate.log"; exit 1; }
      $DRAGOMAN eval --manifest "$dir/run.jsonl" -o "$dir/report" >"$dir.eval.log" 2>&1 || { echo "eval failed: $dir.eval.log"; exit 1; }
      echo "scored $dir" >&2
    done
  done
done

$PY - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
keys = [("text_bleu", "Text-BLEU", 1), ("speech_bleu", "Speech-BLEU", 1), ("slc_0.2", "SLC 0.2", 2),
        ("emotion_agreement", "emotion agr.", 2), ("speaker_sim", "speaker sim.", 3), ("rtf", "RTF", 3)]
print("| split | direction | mode | n | " + " | ".join(k[1] for k in keys) + " |")
print("| --- | --- | --- | --- |" + " --- |" * len(keys))
for summary in sorted(out.glob("*/*/report/summary.json")):
    split, cell = summary.parts[-4], summary.parts[-3]
    src, tgt, mode = cell.split("-")
    s = json.loads(summary.read_text())
    d = s["by_direction"].get(f"{src}-{tgt}", s)
    cells = []
    for key, _, digits in keys:
        v = d.get(key, s.get(key))
        cells.append("—" if v is None else f"{v:.{digits}f}")
    print(f"| {split} | {src}->{tgt} | {mode} | {d.get('n_scored', s.get('n_scored'))} | " + " | ".join(cells) + " |")
EOF
