#!/usr/bin/env python3
"""The hand-written baseline: boto3 list + generate_presigned_url, writing the same JSONL."""
import json
import sys

import boto3
from botocore.config import Config

endpoint, bucket, out = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
with open(out, "w") as f:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": obj["Key"]}, ExpiresIn=86400)
            f.write(json.dumps({"name": obj["Key"].replace("/", "__"), "url": url}) + "\n")
