#!/usr/bin/env bash
# Capture a real GPU host's outputs as test fixtures for provision's parsers (issue 14).
#
# Run on a machine with a real NVIDIA GPU, from the repository root (or pass the fixtures folder):
#   scripts/capture-gpu-fixtures.sh [FIXTURES_DIR]          # default: tests/fixtures/gpu
# Environment: CUDA_SAMPLE_IMAGE (default nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubi8, as verify_cuda_image), the image
# whose vectorAdd is run with `docker run --rm --gpus all` when docker and the NVIDIA Container Toolkit
# are there (skipped with a note otherwise); CAPTURE_TIMEOUT (seconds per command, default 120).
#
# Writes FIXTURES_DIR/<hostname>-<UTC date>/ with one file per command (stdout; stderr in *.stderr when
# not empty) and PROVENANCE: date, hostname, GPU model, driver, CUDA, kernel, OS, and every command run
# with its exit code (or why it was skipped). Review the folder before committing it: it holds the
# host's name, GPU serials and UUIDs.
set -u

fixtures=${1:-tests/fixtures/gpu}
image=${CUDA_SAMPLE_IMAGE:-nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubi8}
limit=${CAPTURE_TIMEOUT:-120}
host=$(hostname -s 2>/dev/null || hostname)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$fixtures/$host-$stamp"

if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "nvidia-smi is not on PATH: run this on a machine with an NVIDIA GPU and its driver" >&2
    exit 1
fi
mkdir -p "$out" || exit 1
provenance="$out/PROVENANCE"

note() { printf '%s\n' "$*" >> "$provenance"; }

# capture FILE COMMAND...: stdout to FILE, stderr to FILE.stderr (removed when empty), exit code noted.
capture() {
    local file=$1 rc
    shift
    timeout "$limit" "$@" > "$out/$file" 2> "$out/$file.stderr"
    rc=$?
    [ -s "$out/$file.stderr" ] || rm -f "$out/$file.stderr"
    note "- \`$*\` → $file, exit $rc"
    return "$rc"
}

skip() { note "- skipped: $*"; }

first_line() { head -n 1 | tr -d '\r'; }

gpu_model=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sort | uniq -c | sed 's/^ *//' | paste -sd ';' -)
brands=$(nvidia-smi -q 2>/dev/null | sed -n 's/^ *Product Brand *: *//p' | sort | uniq -c | sed 's/^ *//' | paste -sd ';' -)
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | first_line)
cuda=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | first_line)
os=$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"' | first_line)

{
    echo "# Real capture by scripts/capture-gpu-fixtures.sh"
    echo
    echo "date (UTC): $(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "hostname: $host"
    echo "GPU model(s): ${gpu_model:-unknown}"
    echo "product brand(s): ${brands:-unknown}"
    echo "driver: ${driver:-unknown}"
    echo "CUDA (driver's maximum): ${cuda:-unknown}"
    echo "kernel: $(uname -r) ($(uname -m))"
    echo "OS: ${os:-unknown}"
    echo "user: $(id -un) (uid $(id -u))"
    echo
    echo "## Commands (each limited to ${limit}s)"
    echo
} > "$provenance"

capture nvidia-smi-q.xml nvidia-smi -q -x
# The exact query provision's facts run (provision/facts/script.py; FACT_QUERY_FIELDS in
# provision/commands/gpu_health.py): keep the two in step.
capture query-gpu.csv nvidia-smi --query-gpu=index,name,uuid,memory.total,pci.bus_id,pci.device_id,driver_version --format=csv,noheader,nounits
capture nvidia-smi-L.txt nvidia-smi -L
capture nvidia-smi.txt nvidia-smi
capture topo-m.txt nvidia-smi topo -m

# The brand names the NVIDIA Container Toolkit compares NVIDIA_REQUIRE_CUDA's brand= with (its `Brand:` lines),
# next to nvidia-smi's <product_brand> in the XML report: the unit tests check provision's mapping on both.
if command -v nvidia-container-cli >/dev/null 2>&1; then
    capture nvidia-container-cli-info.txt nvidia-container-cli info
else
    skip "nvidia-container-cli info (the NVIDIA Container Toolkit is not installed)"
fi

# DCGM: what `provision verify --deep` runs (discovery, then the level-1 deployment checks: seconds).
if command -v dcgmi >/dev/null 2>&1; then
    capture dcgmi-discovery.txt dcgmi discovery -l
    capture dcgmi-diag-r1.txt dcgmi diag -r 1
    capture dcgmi-version.txt dcgmi --version
else
    skip "dcgmi discovery -l, dcgmi diag -r 1 (dcgmi is not installed)"
fi

if ! command -v docker >/dev/null 2>&1; then
    skip "CUDA sample $image (docker is not installed)"
elif ! docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia \
        && ! command -v nvidia-ctk >/dev/null 2>&1; then
    skip "CUDA sample $image (the NVIDIA Container Toolkit is not set up for docker)"
else
    capture cuda-sample.txt docker run --rm --gpus all -- "$image"
    note "  (image: $image; digest: $(docker image inspect --format '{{index .RepoDigests 0}}' "$image" 2>/dev/null || echo unknown))"
fi

echo "captured into $out:"
ls -l "$out"
