#!/usr/bin/env bash
# Builds the Python wheel into dist/: the module `refgen` (maturin, pyo3, from
# pyproject.toml) and the refgen binary in its data folder, as uv and ruff ship theirs.
#   scripts/wheel.sh           build the wheel for this machine (manylinux x86_64 here)
#   scripts/wheel.sh --check   build it, install it into a fresh virtual environment,
#                              run `refgen --version`, one `refgen generate` and the
#                              same from `import refgen` against the local S3 server
#                              (started and stopped if not running)
# Other platforms (macOS, Windows, aarch64, musl) are built by the same command on
# their own CI runners; see the README's "The Python wheel".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REFGEN_ROOT"

MATURIN_VERSION=${MATURIN_VERSION:-1.16.0}
check=false
[ "${1:-}" = "--check" ] && check=true

pip_install "maturin==$MATURIN_VERSION"
dist="$REFGEN_ROOT/dist"
rm -rf "$dist"
# The binary goes in the wheel's data folder (pyproject.toml's `data`), whose
# scripts/ pip installs to bin/.
cargo build --release --locked -p refgen-cli >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
data="$REFGEN_ROOT/target/wheel-data"
rm -rf "$data" && mkdir -p "$data/scripts"
cp "$target_dir/release/refgen" "$data/scripts/refgen"
"$REFGEN_VENV/bin/maturin" build --release --locked --out "$dist" >&2
wheel=$(ls "$dist"/refgen-*.whl)
log "built $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
$check || exit 0

work=$(mktemp -d)
started=false
cleanup() {
    rm -rf "$work"
    if $started; then scripts/s3-server.sh stop || true; fi
}
trap cleanup EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"
installed="$work/venv/bin/refgen"
[ -x "$installed" ] || die "the wheel installed no refgen script"
version=$("$installed" --version)
[ "$version" = "refgen $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" ] || die "unexpected version: $version"
log "installed: $version"

if ! scripts/s3-server.sh status; then
    scripts/s3-server.sh start
    started=true
fi
eval "$(scripts/s3-server.sh env)"
bucket="wheel-check-$$"
[ "$(s3_curl PUT "/$bucket")" = 200 ] || die "cannot create bucket $bucket"
printf 'wheel check\n' > "$work/a.jpg"
for key in a.jpg "b c.jpg"; do
    path=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$key")
    [ "$(s3_curl PUT "/$bucket/$path" -T "$work/a.jpg")" = 200 ] || die "upload of $key failed"
done
env -i PATH="$PATH" HOME="$work" AWS_EC2_METADATA_DISABLED=true \
    AWS_ACCESS_KEY_ID="$REFGEN_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$REFGEN_S3_SECRET_KEY" \
    AWS_ENDPOINT_URL="$REFGEN_S3_ENDPOINT" \
    "$installed" generate "s3://$bucket/" --images -o "$work/refs.jsonl" --json > "$work/summary.json"
written=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["written"])' "$work/summary.json")
[ "$written" = 2 ] || die "the installed refgen wrote $written references, not 2"
url=$(head -n 1 "$work/refs.jsonl" | python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["url"])')
status=$(curl -s -o "$work/body" -w '%{http_code}' "$url")
[ "$status" = 200 ] && cmp -s "$work/body" "$work/a.jpg" || die "GET of the first URL: HTTP $status"
# The module, from the same wheel: the same references, and a Signer's URL.
env -i PATH="$PATH" HOME="$work" AWS_EC2_METADATA_DISABLED=true \
    AWS_ACCESS_KEY_ID="$REFGEN_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$REFGEN_S3_SECRET_KEY" \
    AWS_ENDPOINT_URL="$REFGEN_S3_ENDPOINT" AWS_REGION=us-east-1 \
    "$work/venv/bin/python" - "$bucket" "$work" <<'PY' || die "the installed module failed"
import json, pickle, sys, urllib.request
import refgen
bucket, work = sys.argv[1], sys.argv[2]
report = refgen.generate(f"s3://{bucket}/", f"{work}/py.jsonl", images=True)
assert report.written == 2, report
names = lambda path: [json.loads(line)["name"] for line in open(path)]
assert names(f"{work}/py.jsonl") == names(f"{work}/refs.jsonl")
signer = pickle.loads(pickle.dumps(refgen.Signer(f"s3://{bucket}/")))
body = urllib.request.urlopen(signer.sign(["b c.jpg"])[0]).read()
assert body == open(f"{work}/a.jpg", "rb").read()
PY
log "wheel check passed: the installed refgen and \`import refgen\` wrote 2 references whose URLs fetch the objects"
