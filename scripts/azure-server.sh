#!/usr/bin/env bash
# Local Azure Blob Storage emulator (Azurite, from the npm package `azurite`, blob
# service only) on 127.0.0.1, in memory. It checks Shared Key and SAS signatures and
# SAS expiry, with the well-known development account devstoreaccount1.
#
#   scripts/azure-server.sh start|stop|env|status
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="$REFGEN_STATE_DIR/azure"
pidfile="$dir/azurite.pid"
npm_dir="$REFGEN_TOOLS_DIR/npm"

running() { service_running "$pidfile"; }

start() {
    if running; then
        log "Azurite already running at $REFGEN_AZURE_ENDPOINT (pid $(cat "$pidfile"))"
        return 0
    fi
    npm_install "$npm_dir" azurite "$AZURITE_VERSION"
    rm -rf "$dir" && mkdir -p "$dir"
    log "starting Azurite $AZURITE_VERSION blob service on $REFGEN_AZURE_ENDPOINT (log: $dir/azurite.log)"
    # --skipApiVersionCheck: refgen pins a service version newer than Azurite may know.
    setsid "$npm_dir/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$REFGEN_AZURE_PORT" \
        --inMemoryPersistence --skipApiVersionCheck --disableProductStyleUrl --disableTelemetry \
        >"$dir/azurite.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    wait_for_http "$REFGEN_AZURE_ENDPOINT/" 60 || { tail -20 "$dir/azurite.log" >&2; die "Azurite did not answer within 60 s"; }
    log "Azurite ready"
}

stop() { service_stop "Azurite" "$pidfile" "$dir"; }

case "${1:-}" in
start) start ;;
stop) stop ;;
env)
    echo "export REFGEN_TEST_AZURE_ENDPOINT=$REFGEN_AZURE_ENDPOINT"
    echo "export REFGEN_TEST_AZURE_ACCOUNT=devstoreaccount1"
    # Azurite's published development key (the same on every installation).
    echo "export REFGEN_TEST_AZURE_KEY=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    ;;
status) running ;;
*) die "usage: $0 start|stop|env|status" ;;
esac
