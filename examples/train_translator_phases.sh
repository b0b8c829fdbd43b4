#!/usr/bin/env bash
# The Translator's three phases (DESIGN §6) once the front nodes and the codec are trained (their
# default checkpoints in nodes/checkpoints/). Epoch counts size the cosine schedules; each phase
# also has a wall-time cap (Lightning's max_time) so the recipe fits a small machine's budget.
#   bash examples/train_translator_phases.sh [EPOCHS1 EPOCHS2 EPOCHS3 [CAP_MINUTES_PER_EPOCH]]
set -euo pipefail
cd "$(dirname "$0")/.."
E1=${1:-1}; E2=${2:-2}; E3=${3:-1}; CAP=${4:-10}
PY=${PYTHON:-.venv/bin/python}
cap() { printf "00:%02d:%02d:00" $(($1 * CAP / 60)) $(($1 * CAP % 60)); }
common="trainer.enable_progress_bar=false"

[ -f data/translator_cache.pt ] || $PY examples/train_translator.py stage=cache
$PY examples/train_translator.py phase=1 trainer.max_epochs="$E1" "+trainer.max_time=$(cap "$E1")" $common
$PY examples/train_translator.py phase=2 trainer.max_epochs="$E2" "+trainer.max_time=$(cap "$E2")" $common \
    init_from=runs/translator_phase1.nemo
$PY examples/train_translator.py phase=3 trainer.max_epochs="$E3" "+trainer.max_time=$(cap "$E3")" $common \
    init_from=runs/translator_phase2.nemo model.optim.lr=0.0005 model.optim.sched.warmup_steps=0
mkdir -p nodes/checkpoints
cp runs/translator_phase3.nemo nodes/checkpoints/translator.nemo
echo "nodes/checkpoints/translator.nemo <- runs/translator_phase3.nemo"
