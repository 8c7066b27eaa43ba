#!/usr/bin/env bash
# The CUDA path on a GPU machine, in one go (about 7 minutes on an H200, at most 10):
# the cuda-parametrised tests, preset speeds, `keylink demo` alone and timed, then the whole
# test suite beside two more demo seeds. Uses the machine's own python3 and torch (keylink's
# needs are all there). Results go to ${OUT:-gpu-check}: check.log, tests.log, demos.log,
# anatomy.txt, demos.tar.gz (pictures, metrics, annotations, run logs).
#
# bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
py=python3
minutes=${DEMO_MINUTES:-2.3}  # each demo's training bound, so the whole check ends in time

{
  nvidia-smi -L
  $py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
  timeout 60 $py -m pytest -q -p no:cacheprovider -k cuda -rf
  timeout 60 $py benchmarks/preset_speed.py --presets cpu --steps 300
  timeout 60 $py benchmarks/preset_speed.py --presets paper --steps 100
  # The demo as a user runs it, alone on the GPU, timed.
  /usr/bin/time -f "demo wall %e s" \
    timeout 150 $py -m keylink.cli demo --out demo0 --quiet --minutes "$minutes"
} 2>&1 | tee "$out/check.log"

# The whole suite beside two more demo seeds (their speeds are shared, not the demo's own).
timeout 230 $py -m pytest -q -p no:cacheprovider -rf > "$out/tests.log" 2>&1 &
for s in 1 2; do
  timeout 230 $py -m keylink.cli demo --out "demo$s" --seed "$s" --quiet --minutes "$minutes" \
    > "demo$s.log" 2>&1 &
done
wait
cat demo1.log demo2.log > "$out/demos.log"
timeout 40 $py benchmarks/demo_anatomy.py demo0 demo1 demo2 > "$out/anatomy.txt" 2>&1
tar czf "$out/demos.tar.gz" --exclude='*/data' --exclude='*/run/checkpoints' \
  --exclude='*/annotations/*.png' --exclude='*/annotations/*.jpg' demo0 demo1 demo2
ls -la "$out"
