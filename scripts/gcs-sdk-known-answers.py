#!/usr/bin/env python3
"""GCS V4 signed URLs from Google's own Python library, for the cases the
conformance file does not hold: a URL pinned to one generation
(`--pin-versions`), and one for a bucket-bound hostname (`--url-endpoint
https://cdn.example.com --bucket-bound`), with and without a generation.

google-cloud-storage's `Blob.generate_signed_url(version="v4", …)` signs at a fixed
time (its clock is patched) with the dummy service-account key of
shared/vectors/gcs/, offline. The output is
crates/refgen-gcs/tests/sdk_known_answers.json, which a test checks; run with
any Python that has google-cloud-storage (scripts/bench.sh installs one:
~/.cache/refgen-tools/bench-venv/bin/python):

    python scripts/gcs-sdk-known-answers.py ../shared > crates/refgen-gcs/tests/sdk_known_answers.json
"""
import datetime
import json
import sys
from pathlib import Path
from unittest import mock

import google.cloud.storage as storage
import google.cloud.storage._signing as signing
from google.oauth2 import service_account

shared = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared")
key_file = shared / "vectors/gcs/test_service_account.not-a-test.json"
credentials = service_account.Credentials.from_service_account_file(str(key_file))
AT = datetime.datetime(2026, 1, 2, 3, 4, 5)
client = storage.Client(project="refgen", credentials=credentials)

cases = []
for description, bucket, name, kwargs in [
    ("generation, path style", "test-bucket", "dir/with space+plus.jpg", {"generation": 1796277928418061}),
    ("bucket-bound hostname", "cdn.example.com", "a/b c.jpg", {"bucket_bound_hostname": "cdn.example.com", "scheme": "https"}),
    (
        "bucket-bound hostname with a generation",
        "images-bucket",
        "ü/1.jpg",
        {"bucket_bound_hostname": "cdn.example.com", "scheme": "https", "generation": 42},
    ),
]:
    blob = client.bucket(bucket).blob(name)
    with mock.patch.object(signing, "_NOW", return_value=AT.replace(tzinfo=datetime.timezone.utc)):
        url = blob.generate_signed_url(
            version="v4", expiration=datetime.timedelta(seconds=3600), method="GET", credentials=credentials, **kwargs
        )
    cases.append({
        "description": description,
        "bucket": bucket,
        "object": name,
        "generation": str(kwargs["generation"]) if "generation" in kwargs else None,
        "bucket_bound_hostname": kwargs.get("bucket_bound_hostname"),
        "timestamp": AT.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expiration": 3600,
        "url": url,
    })
print(json.dumps({"generator": f"python google-cloud-storage {storage.__version__}", "cases": cases}, indent=1, ensure_ascii=False))
