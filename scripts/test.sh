#!/usr/bin/env bash
# Runs every test: installs and starts the local storage servers (unless already
# running), builds the binary, runs `cargo test --workspace`, builds the Python
# module (`maturin develop`) and runs its pytest suite (tests/python), then stops
# what it started.
# Extra arguments go to cargo test (e.g. scripts/test.sh -p refgen-e2e tricky).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REFGEN_ROOT"

servers=(s3 gcs azure s3rver)
started=()
cleanup() {
    for s in "${started[@]}"; do scripts/"$s"-server.sh stop || true; done
}
trap cleanup EXIT

for s in "${servers[@]}"; do
    if ! scripts/"$s"-server.sh status; then
        started+=("$s")
        scripts/"$s"-server.sh start
    fi
    eval "$(scripts/"$s"-server.sh env)"
done

# pyarrow writes the inventory reports of the inventory tests (scripts/inventory-fixture.py).
pip_install "pyarrow==${PYARROW_VERSION:-26.0.1}"
export REFGEN_TEST_PYTHON="$REFGEN_VENV/bin/python"

cargo build --workspace --bins --examples --locked
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export REFGEN_BIN="$target_dir/debug/refgen"
cargo test --workspace --locked "$@"

# `import refgen`: the module built into the tools' virtual environment (debug,
# reusing the build above), tested against the same servers. Skipped when the
# arguments picked some Rust tests only.
if [ $# -eq 0 ]; then
    pip_install "maturin==${MATURIN_VERSION:-1.16.0}" "pytest==${PYTEST_VERSION:-8.4.2}" "boto3==${BOTO3_VERSION:-1.40.61}" \
        "dask==${DASK_VERSION:-2026.8.0}" "distributed==${DASK_VERSION:-2026.8.0}" "pandas==${PANDAS_VERSION:-3.1.1}" \
        "pyspark==${PYSPARK_VERSION:-4.3.0}" "ray==${RAY_VERSION:-2.60.0}"
    # pyproject.toml's data folder holds the wheel's binary once scripts/wheel.sh
    # ran; the module alone needs it only to exist.
    mkdir -p target/wheel-data
    VIRTUAL_ENV="$REFGEN_VENV" "$REFGEN_VENV/bin/maturin" develop --locked --quiet >&2
    "$REFGEN_VENV/bin/python" -m pytest -q tests/python
fi
