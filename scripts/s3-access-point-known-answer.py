#!/usr/bin/env python3
"""Known answers for S3 presigned GET URLs through an access point, from
botocore's own `generate_presigned_url` (offline: fixed credentials, a clock
patched to a fixed time, no request made).

An access point ARN given as the bucket makes botocore sign for the access
point's host (`NAME-ACCOUNT.s3-accesspoint.REGION.amazonaws.com`) and region;
refgen must produce the same URL for the same ARN, key, time and credentials.
The output is crates/refgen-s3/tests/access_point_known_answers.json, which a
test checks; run with any Python that has botocore (scripts/bench.sh installs
one: ~/.cache/refgen-tools/bench-venv/bin/python).
"""
import datetime
import json
from unittest import mock

import botocore
import botocore.auth
import botocore.session
from botocore.config import Config

ACCESS_KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AT = datetime.datetime(2026, 1, 2, 3, 4, 5)
cases = []
for description, arn, region, key in [
    ("access point ARN", "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap", "us-west-2", "photos/a b+c.jpg"),
    ("access point ARN in another partition", "arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/ap-2", "cn-north-1", "ü/1.jpg"),
]:
    session = botocore.session.get_session()
    client = session.create_client(
        "s3",
        region_name=region,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4"),
    )
    with mock.patch.object(botocore.auth.datetime, "datetime", wraps=datetime.datetime) as clock:
        clock.utcnow.return_value = AT
        clock.now.return_value = AT.replace(tzinfo=datetime.timezone.utc)
        url = client.generate_presigned_url("get_object", Params={"Bucket": arn, "Key": key}, ExpiresIn=3600)
    cases.append({"description": description, "bucket": arn, "region": region, "key": key,
                  "at": AT.strftime("%Y%m%dT%H%M%SZ"), "expires_in": 3600, "url": url})
print(json.dumps({"generator": f"botocore {botocore.__version__}", "access_key": ACCESS_KEY, "secret_key": SECRET,
                  "cases": cases}, indent=1, ensure_ascii=False))
