#!/usr/bin/env bash
# The main job on a local default: starts a local S3 server (127.0.0.1) with a bucket
# of sample images, builds refgen, and writes sample-refs.jsonl from that bucket.
# The server keeps running so you can try more commands; stop it with
#   scripts/s3-server.sh stop
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REFGEN_ROOT"

scripts/s3-server.sh start
eval "$(scripts/s3-server.sh env)"

# Sample objects: small real PNG images in a few folders, plus files that are not images.
samples="$REFGEN_STATE_DIR/samples"
rm -rf "$samples" && mkdir -p "$samples"
python3 - "$samples" <<'PY'
import os, struct, sys, zlib
root = sys.argv[1]
def png(path, rgb):
    w = h = 16
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
colours = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220)}
for folder in ("farm/2024", "farm/2025", "city"):
    for name, rgb in colours.items():
        png(f"{root}/{folder}/{name} tile.png", rgb)
for name, text in {"README.txt": "not an image\n", "farm/labels.csv": "file,label\n"}.items():
    with open(f"{root}/{name}", "w") as f:
        f.write(text)
PY
s3_curl PUT /sample >/dev/null
count=0
while IFS= read -r -d '' file; do
    key=${file#"$samples"/}
    path=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$key")
    [ "$(s3_curl PUT "/sample/$path" -T "$file")" = 200 ] || die "upload of $key failed"
    count=$((count + 1))
done < <(find "$samples" -type f -print0)
log "bucket s3://sample holds $count sample objects"

# The test command's profile (dev), not release: nine objects need no optimized
# build, and `scripts/test.sh` after this reuses everything built here.
cargo build --locked --bin refgen
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

export AWS_ACCESS_KEY_ID=$REFGEN_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$REFGEN_S3_SECRET_KEY
export AWS_ENDPOINT_URL=$REFGEN_S3_ENDPOINT AWS_EC2_METADATA_DISABLED=true
set -x
"$target_dir/debug/refgen" generate s3://sample/ --images -o sample-refs.jsonl
set +x
echo
head -n 3 sample-refs.jsonl
echo "…"
url=$(head -n 1 sample-refs.jsonl | python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["url"])')
printf 'A plain GET of the first URL returns HTTP %s.\n' "$(curl -s -o /dev/null -w '%{http_code}' "$url")"
cat <<TXT

Try more against the same bucket (the server is still running):
  export AWS_ACCESS_KEY_ID=$REFGEN_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$REFGEN_S3_SECRET_KEY AWS_ENDPOINT_URL=$REFGEN_S3_ENDPOINT
  $target_dir/debug/refgen generate 's3://sample/farm/**/*.png' --expires-in 1h
Stop the server with: scripts/s3-server.sh stop
TXT
