#!/usr/bin/env bash
# Prepare the GPU check (benchmarks/gpu_screening.py) for a bare GPU machine, then print the one command to run there.
#
# The GPU image has Python 3.12 with torch, transformers 5.17, accelerate, peft, pandas and pyarrow, and no network:
# it lacks trl and datasets (with dill, multiprocess and xxhash), and the transformers >= 5.24 this project pins (with
# the tokenizers, safetensors and huggingface_hub 2 it needs, and huggingface_hub's httpx2 stack). This
# script downloads those as cp312 manylinux wheels (pins from constraints.txt; never ray, litellm or the embedded
# model) into the git-ignored folder .device-wheels/, which the device tool's `run` carries beside the working tree.
# There the wheels are installed with --target into /tmp/site and put first on PYTHONPATH; the repository itself
# runs from its checkout (no install). The check takes at most 8 minutes and writes $OUT/gpu_screening.json; copy
# it to benchmarks/results/gpu_screening.json and commit it.
#
#   bash scripts/device_check.sh            # download what is missing, then print the command
#   bash scripts/device_check.sh --print    # only print the command
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=.device-wheels
PYTHON=${PYTHON:-python3}
# What the GPU image lacks or has in a version below the project's pins (see ENGINEERING-NOTES.md).
PACKAGES=(trl transformers datasets dill multiprocess fsspec regex peft xxhash tokenizers safetensors huggingface_hub httpx2 httpcore2 truststore anyio h11)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)

pin() {  # the version constraints.txt pins for package $1
    local version
    version=$(grep -i -E "^$1==" constraints.txt | head -1 | cut -d= -f3)
    if [[ -z "$version" ]]; then
        echo "device_check: constraints.txt pins no version of $1" >&2
        exit 2
    fi
    echo "$version"
}

download() {
    mkdir -p "$WHEELS"
    local platform_args=() name version normalized
    for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
    for name in "${PACKAGES[@]}"; do
        version=$(pin "$name")
        normalized=$(echo "$name" | tr '-' '_')
        # one version of each package: an older wheel left here would stop the install there
        find "$WHEELS" -iname "${normalized}-*.whl" ! -iname "${normalized}-${version}-*" -delete
        if compgen -G "$WHEELS/${normalized}-${version}-*.whl" >/dev/null; then
            continue
        fi
        "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            "${platform_args[@]}" -d "$WHEELS" "${name}==${version}"
    done
    local size
    size=$(du -sm "$WHEELS" | cut -f1)
    if ((size > 48)); then
        echo "device_check: $WHEELS holds ${size} MiB; the device tool carries 64 MiB with the working tree" >&2
        exit 2
    fi
    echo "device_check: ${#PACKAGES[@]} packages, ${size} MiB in $WHEELS:" >&2
    ls "$WHEELS" >&2
}

if [[ "${1:-}" == "--print" ]]; then
    shift
else
    download
fi

# The command for the device tool: run(command=<below>, carry=[".device-wheels"], timeout_s=540). Arguments left
# over go to the check: `--stages memory_cap,evaluation,packing --merge benchmarks/results/gpu_screening.json`
# measures only what an earlier device session did not reach and keeps that session's stages.
cat <<'EOF' | tr -d '\n'
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device-wheels/*.whl && export PYTHONPATH=/tmp/site:$PWD REWARD_SEARCH_CACHE=/tmp/rs-cache HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 && nvidia-smi --query-gpu=name,memory.total --format=csv && timeout 470 python3 benchmarks/gpu_screening.py --out $OUT/gpu_screening.json
EOF
if (($#)); then printf ' %q' "$@"; fi
echo
