#!/usr/bin/env python3
"""Known answer for an S3 presigned GET URL of a requester-pays bucket.

botocore's presigner signs `RequestPayer` as a header (`X-Amz-SignedHeaders=
host;x-amz-request-payer`), which a plain GET does not send; refgen signs
`x-amz-request-payer=requester` into the query instead, which S3 accepts from a
plain GET. This asks botocore's own SigV4 query signer (`S3SigV4QueryAuth`, the
one `generate_presigned_url` uses) to sign a GET whose URL already holds that
parameter, at a fixed time, so the answer is botocore's and not refgen's. The
output goes to crates/refgen-s3/tests/requester_pays_known_answer.txt, which a
test checks; run with any Python that has botocore (scripts/bench.sh installs
one: ~/.cache/refgen-tools/bench-venv/bin/python).

With `--version-id ID`, the URL also names one version (`versionId`, as
`generate_presigned_url('get_object', Params={..., 'VersionId': ID})` puts it in
the query): that answer is crates/refgen-s3/tests/version_id_known_answer.txt,
for `3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo` (the
version id of the S3 documentation's examples).
"""
import sys
import urllib.parse
import datetime
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
URL = "https://examplebucket.s3.amazonaws.com/photos/a%20b%2Bc.jpg?x-amz-request-payer=requester"
AT = datetime.datetime(2026, 1, 2, 3, 4, 5)
if sys.argv[1:2] == ["--version-id"]:
    URL = URL.replace("?", f"?versionId={urllib.parse.quote(sys.argv[2], safe='')}&")

auth = botocore.auth.S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET), "s3", "us-east-1", expires=3600)
request = AWSRequest(method="GET", url=URL)
with mock.patch.object(botocore.auth.datetime, "datetime", wraps=datetime.datetime) as clock:
    clock.utcnow.return_value = AT
    clock.now.return_value = AT.replace(tzinfo=datetime.timezone.utc)
    auth.add_auth(request)
print(request.url)
