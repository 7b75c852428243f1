#!/usr/bin/env python3
"""Known answer for GCS V4 signing with HMAC keys (GOOG4-HMAC-SHA256).

No published conformance vector covers HMAC signing, so this computes one by
following Google's documentation of the V4 signing process step by step
(https://cloud.google.com/storage/docs/authentication/signatures), with nothing
but the standard library and independently of refgen's Rust code. The output is
stored in crates/refgen-gcs/tests/hmac_known_answer.txt and checked by a test.

With `--user-project PROJECT`, the URL also carries `userProject` (a
requester-pays bucket's billed project) as a signed query parameter: that answer
is crates/refgen-gcs/tests/hmac_user_project_known_answer.txt (`my-project`).
"""
import sys
import hashlib
import hmac
import urllib.parse

ACCESS_ID = "GOOG1EXAMPLEACCESSID"
SECRET = "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"
BUCKET, OBJECT = "test-bucket", "dir/with space+plus.jpg"
DATETIME, EXPIRES, HOST = "20190201T090000Z", 3600, "storage.googleapis.com"

date = DATETIME[:8]
scope = f"{date}/auto/storage/goog4_request"
query = {
    "X-Goog-Algorithm": "GOOG4-HMAC-SHA256",
    "X-Goog-Credential": f"{ACCESS_ID}/{scope}",
    "X-Goog-Date": DATETIME,
    "X-Goog-Expires": str(EXPIRES),
    "X-Goog-SignedHeaders": "host",
}
if sys.argv[1:2] == ["--user-project"]:
    query["userProject"] = sys.argv[2]
quote = lambda s, safe: urllib.parse.quote(s, safe=safe)  # noqa: E731 (unreserved chars are always safe)
canonical_query = "&".join(f"{quote(k, '')}={quote(v, '')}" for k, v in sorted(query.items()))
path = f"/{BUCKET}/{quote(OBJECT, '/')}"
canonical_request = "\n".join(["GET", path, canonical_query, f"host:{HOST}", "", "host", "UNSIGNED-PAYLOAD"])
string_to_sign = "\n".join(
    ["GOOG4-HMAC-SHA256", DATETIME, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
)

key = ("GOOG4" + SECRET).encode()
for part in (date, "auto", "storage", "goog4_request"):
    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
print(f"https://{HOST}{path}?{canonical_query}&X-Goog-Signature={signature}", end="")
