#!/usr/bin/env bash
# The one prepared script for a machine with an NVIDIA GPU (issue 24): the CuPy tests, then the GPU
# benchmark (benchmarks/gpu.py). Needs python3 with CuPy, NumPy, safetensors, scikit-learn and
# Pillow; chainrule runs from this source tree (PYTHONPATH=src), nothing installed.
#   bash benchmarks/gpu_check.sh OUT_DIR DATA_DIR
# OUT_DIR gets nvidia-smi.txt, tests.log, bench.log and gpu_results.json (copy that one to
# benchmarks/gpu_results.json and run `python benchmarks/report.py` for RESULTS.md). DATA_DIR holds
# cifar10-jpeg.tar.gz. WHEELS (optional, a folder of .whl files) is installed into a scratch
# folder first where array-api-compat is missing.
set -uo pipefail
OUT=${1:?usage: gpu_check.sh OUT_DIR DATA_DIR}
DATA=$(cd "${2:?usage: gpu_check.sh OUT_DIR DATA_DIR}" && pwd)
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 CHAINRULE_CACHE=/tmp/chainrule-cache
if ! python3 -c "import array_api_compat" 2>/dev/null && [ -n "${WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.txt"
status=0
(
  s=0
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py || s=1
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_array_api.py -k cupy || s=1
  exit $s
) 2>&1 | tee "$OUT/tests.log" || status=1
timeout 400 python3 benchmarks/gpu.py "$DATA" "$OUT/gpu_results.json" 2>&1 | tee "$OUT/bench.log" || status=1
exit $status
