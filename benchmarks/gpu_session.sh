#!/usr/bin/env bash
# One short GPU session (run on a lent H100/H200 through the device tool; see BENCHMARKS.md):
# a 256x256 bf16 training smoke run on demo tiles, then the GPU benchmark rows.
# Expects the EfficientNet-Lite0 wheels in .whl/ (the machine has torch but not them).
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)"
# 1. training smoke run: 256x256, bf16 autocast, batch 8, through the CLI
python3 -m ganlab demo /tmp/demo256 --size 256 --train-per-class 32 --test-per-class 4 >/dev/null
cat > /tmp/gpu_train.json <<JSON
{"domain_x": ["/tmp/demo256/train/benign"], "domain_y": ["/tmp/demo256/train/malignant"],
 "preset": "cyclegan", "image_size": 256, "load_size": 286, "batch_size": 8,
 "n_epochs": 2, "n_epochs_decay": 1, "amp": "bf16", "channels_last": true, "device": "cuda", "seed": 0}
JSON
timeout 150 python3 -m ganlab train --config /tmp/gpu_train.json --out /tmp/gpu_run 2>&1 | tail -5 | tee "$OUT/train_smoke.txt"
# 2. benchmarks with their baselines measured in the same run
timeout 150 python3 benchmarks/train_step.py --json "$OUT/train_step.json" 2>&1 | tail -12
timeout 60 python3 benchmarks/generation.py --json "$OUT/generation.json" 2>&1 | tail -8
