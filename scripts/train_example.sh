#!/usr/bin/env bash
# Trains image, then video, then speech adapters on a random tiny Llama 3.2 Vision with one command, as
# configs/tiny-image-video-speech.yaml describes, on data this script makes with ffmpeg; then captions and
# transcribes the training media with the trained adapters (each output should equal its target).
#
#   scripts/train_example.sh [DIR]     DIR (default: configs/) receives example-data/ and, when it is not configs/,
#                                      a copy of the config; LLAMA_MM names the binary (default build/cli/llama-mm)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mkdir -p "${1:-$here/configs}" && cd "${1:-$here/configs}" && pwd)
bin=${LLAMA_MM:-$here/build/cli/llama-mm}
config=$dir/tiny-image-video-speech.yaml
[ "$config" -ef "$here/configs/tiny-image-video-speech.yaml" ] || cp "$here/configs/tiny-image-video-speech.yaml" "$config"
data=$dir/example-data
rm -rf "$data"
mkdir -p "$data/media"
ff() { ffmpeg -v error -nostdin -y "$@"; }

"$bin" init-model --arch mllama --preset tiny --seed 3 -o "$data/base" >/dev/null
# Four images, four videos, four tones, each with the text to learn.
images=("testsrc=size=96x64:duration=1|a test card" "smptebars=size=64x96:duration=1|colour bars"
        "color=c=red:size=80x80:duration=1|a red square" "mandelbrot=size=120x90|a fractal")
videos=("testsrc=size=64x48:rate=8:duration=1|a counter" "smptebars=size=64x48:rate=8:duration=1|color bars"
        "color=c=blue:size=64x48:rate=8:duration=1|all blue" "life=size=64x48:rate=8:mold=10|cells living")
tones=("300|low hum" "700|middle" "1500|high tone" "3000|whistle")
: >"$data/images.jsonl"; : >"$data/videos.jsonl"; : >"$data/speech.jsonl"
for i in "${!images[@]}"; do
  src=${images[$i]%%|*}; text=${images[$i]#*|}
  ff -f lavfi -i "$src" -frames:v 1 "$data/media/image$i.png"
  printf '{"image": "media/image%d.png", "text": "%s"}\n' "$i" "$text" >>"$data/images.jsonl"
done
for i in "${!videos[@]}"; do
  src=${videos[$i]%%|*}; text=${videos[$i]#*|}
  ff -f lavfi -i "$src" -t 1 -c:v libx264 -pix_fmt yuv420p "$data/media/video$i.mp4"
  printf '{"video": "media/video%d.mp4", "text": "%s"}\n' "$i" "$text" >>"$data/videos.jsonl"
done
for i in "${!tones[@]}"; do
  hz=${tones[$i]%%|*}; text=${tones[$i]#*|}
  ff -f lavfi -i "sine=frequency=$hz:duration=1" -ar 16000 -ac 1 "$data/media/tone$i.wav"
  printf '{"audio": "media/tone%d.wav", "text": "%s"}\n' "$i" "$text" >>"$data/speech.jsonl"
done

"$bin" train "$config"

run=$data/run/adapters
for i in "${!images[@]}"; do
  printf 'image%d: %s\n' "$i" "$("$bin" caption -m "$data/base" --adapter "$run/image.safetensors" "$data/media/image$i.png" --temp 0 -n 16 2>/dev/null)"
done
for i in "${!videos[@]}"; do
  printf 'video%d: %s\n' "$i" "$("$bin" caption -m "$data/base" --adapter "$run/image.safetensors" --adapter "$run/video.safetensors" "$data/media/video$i.mp4" --temp 0 -n 16 2>/dev/null)"
done
for i in "${!tones[@]}"; do
  printf 'tone%d: %s\n' "$i" "$("$bin" transcribe -m "$data/base" --adapter "$run/speech.safetensors" "$data/media/tone$i.wav" -n 16 2>/dev/null)"
done
