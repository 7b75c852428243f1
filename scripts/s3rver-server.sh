#!/usr/bin/env bash
# s3rver (the npm package `s3rver`) on 127.0.0.1: a second S3-compatible server,
# for a quirk of real stores SeaweedFS does not show (its one-level listings leave
# out a folder that holds only folders). Data in a folder of its own, removed on stop.
#
#   scripts/s3rver-server.sh start|stop|env|status
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="$REFGEN_STATE_DIR/s3rver"
pidfile="$dir/s3rver.pid"
npm_dir="$REFGEN_TOOLS_DIR/npm-s3rver"

running() { service_running "$pidfile"; }

start() {
    if running; then
        log "s3rver already running at $REFGEN_S3RVER_ENDPOINT (pid $(cat "$pidfile"))"
        return 0
    fi
    npm_install "$npm_dir" s3rver "$S3RVER_VERSION"
    rm -rf "$dir" && mkdir -p "$dir/data"
    log "starting s3rver $S3RVER_VERSION on $REFGEN_S3RVER_ENDPOINT (log: $dir/s3rver.log)"
    setsid "$npm_dir/node_modules/.bin/s3rver" -d "$dir/data" -a 127.0.0.1 -p "$REFGEN_S3RVER_PORT" --silent \
        --no-vhost-buckets >"$dir/s3rver.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    wait_for_http "$REFGEN_S3RVER_ENDPOINT/" 60 || { tail -20 "$dir/s3rver.log" >&2; die "s3rver did not answer within 60 s"; }
    log "s3rver ready"
}

stop() { service_stop "s3rver" "$pidfile" "$dir"; }

case "${1:-}" in
start) start ;;
stop) stop ;;
env)
    echo "export REFGEN_TEST_S3RVER_ENDPOINT=$REFGEN_S3RVER_ENDPOINT"
    ;;
status) running ;;
*) die "usage: $0 start|stop|env|status" ;;
esac
