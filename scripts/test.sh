#!/usr/bin/env bash
# Runs every test: installs and starts the local storage servers (unless already
# running), builds the binary, runs `cargo test --workspace`, then stops what it started.
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
