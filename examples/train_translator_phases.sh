#!/usr/bin/env bash
# The Translator's three phases (DESIGN §6) once the front nodes and the codec are trained (their
# default checkpoints in nodes/checkpoints/). Epoch counts size the cosine schedules; each phase
# also has a wall-time cap (Lightning's max_time) so the recipe fits a small machine's budget.
# Every phase adds MT sequences from text-only grammar pairs (MT1/MT2/MT3 per epoch; written once
# by `dragoman data text`, dev and test sentences excluded).
#   bash examples/train_translator_phases.sh [EPOCHS1 EPOCHS2 EPOCHS3 [CAP_MINUTES_PER_EPOCH]]
#   MT1=10000 MT2=4000 MT3=2000 bash examples/train_translator_phases.sh 3 4 1 8
#   ALIGN=1.0 SS=0.3 SS_MIN=16 MT1=15000 bash examples/train_translator_phases.sh 2 2 1 9   (guided + scheduled sampling)
# After retraining the semantic tokenizer: its own token cache (SEMANTIC, CACHE), and phase 1 may
# start from a trained translator (INIT; another vocabulary is fine: Translator.load_weights_from).
#   SEMANTIC=runs/semantic256/semantic_tokenizer.nemo CACHE=data/translator_cache_s256.pt \
#   INIT=nodes/checkpoints/translator.nemo EXTRA="model.code_levels.semantic=[4,4,4,4]" \
#   DEST=runs/translator_s256.nemo bash examples/train_translator_phases.sh 1 1 1 9
# EXTRA: more Hydra overrides for every phase; DEST: where the final .nemo is copied.
# INTERLEAVE=1: speech interleaved with its text, word by word (model.interleave_text,
# nodes/speech_units.py); the cache gets word timings first (stage=align, ~3 min), once.
set -euo pipefail
cd "$(dirname "$0")/.."
E1=${1:-1}; E2=${2:-2}; E3=${3:-1}; CAP=${4:-10}
MT1=${MT1:-10000}; MT2=${MT2:-4000}; MT3=${MT3:-2000}
PY=${PYTHON:-.venv/bin/python}
cap() { printf "00:%02d:%02d:00" $(($1 * CAP / 60)) $(($1 * CAP % 60)); }
# ALIGN: weight of the guided-attention loss (nodes/attention_guide.py) in every phase.
CACHE=${CACHE:-data/translator_cache.pt}
common="trainer.enable_progress_bar=false model.align_loss.weight=${ALIGN:-0} cache=$CACHE ${EXTRA:-}"
init1=${INIT:+init_from=$INIT}

C=data/corpus
DRAGOMAN="$PY -m dragoman.graphs.cli"
# 4,000 more rendered pairs for the speech tasks (~1 min), none of them a corpus sentence.
if [ ! -f data/corpus_extra/train.jsonl ]; then
  $DRAGOMAN data text --out data/extra_text.jsonl --format pairs --pairs 4000 --seed 2 \
      --exclude $C/train.jsonl $C/dev.jsonl $C/test.jsonl $C/test_unseen_speakers.jsonl
  $DRAGOMAN data import pairs data/extra_text.jsonl --out data/corpus_extra --split train=1.0 --seed 5 --jobs 2
fi
[ -f "$CACHE" ] || $PY examples/train_translator.py stage=cache cache="$CACHE" tokenizers.semantic="${SEMANTIC:-default}"
if [ "${INTERLEAVE:-0}" = 1 ]; then
  common="$common model.interleave_text=true"
  $PY -c "import sys, torch; c = torch.load('$CACHE', weights_only=True); sys.exit('unit_phones' not in c['splits']['train'][0])" \
      || $PY examples/train_translator.py stage=align cache="$CACHE"
fi
[ -f data/text_pairs.jsonl ] || $DRAGOMAN data text --out data/text_pairs.jsonl --pairs 60000 \
    --seed 1 --exclude $C/dev.jsonl $C/test.jsonl $C/test_unseen_speakers.jsonl
$PY examples/train_translator.py phase=1 trainer.max_epochs="$E1" "+trainer.max_time=$(cap "$E1")" $common \
    model.train_ds.text_mt_per_epoch="$MT1" $init1
$PY examples/train_translator.py phase=2 trainer.max_epochs="$E2" "+trainer.max_time=$(cap "$E2")" $common \
    init_from=runs/translator_phase1.nemo model.train_ds.text_mt_per_epoch="$MT2"
$PY examples/train_translator.py phase=3 trainer.max_epochs="$E3" "+trainer.max_time=$(cap "$E3")" $common \
    init_from=runs/translator_phase2.nemo model.optim.lr=0.0005 model.optim.sched.warmup_steps=0 \
    model.train_ds.text_mt_per_epoch="$MT3"
# Optionally SS_MIN minutes more of phase-2 data with scheduled sampling (share SS of the speech
# history drawn by the model itself; Translator._own_history). SS_MIN=0 (default) skips it.
SS=${SS:-0.3}; SS_MIN=${SS_MIN:-0}
final=runs/translator_phase3.nemo
if [ "$SS_MIN" -gt 0 ]; then
  $PY examples/train_translator.py phase=2 init_from=runs/translator_phase3.nemo model.scheduled_sampling="$SS" \
      model.optim.lr=0.001 model.optim.sched.warmup_steps=20 trainer.max_epochs=1 \
      "+trainer.max_time=$(printf "00:00:%02d:00" "$SS_MIN")" $common model.train_ds.text_mt_per_epoch="$MT2" \
      exp.name=translator_ss save_to=runs/translator_ss.nemo
  final=runs/translator_ss.nemo
fi
DEST=${DEST:-nodes/checkpoints/translator.nemo}
mkdir -p "$(dirname "$DEST")"
cp "$final" "$DEST"
echo "$DEST <- $final"
