#!/usr/bin/env python3
"""The hand-written inventory baseline: boto3 reads an S3 Inventory manifest and its data
files, pyarrow reads them (CSV.gz, Parquet or ORC), boto3's generate_presigned_url signs
each current, non-archived key, and the same JSONL is written."""
import gzip
import io
import json
import sys
import urllib.parse

import boto3
import pyarrow.csv
import pyarrow.orc
import pyarrow.parquet
from botocore.config import Config

endpoint, manifest_url, out = sys.argv[1:4]
dest, _, manifest_key = manifest_url.removeprefix("s3://").partition("/")
s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
manifest = json.loads(s3.get_object(Bucket=dest, Key=manifest_key)["Body"].read())
source, fmt = manifest["sourceBucket"], manifest["fileFormat"].upper()
columns = [c.strip() for c in manifest.get("fileSchema", "").split(",")]
with open(out, "w") as f:
    for data in manifest["files"]:
        body = s3.get_object(Bucket=dest, Key=data["key"])["Body"].read()
        if fmt == "CSV":
            table = pyarrow.csv.read_csv(
                io.BytesIO(gzip.decompress(body)),
                read_options=pyarrow.csv.ReadOptions(column_names=columns),
                convert_options=pyarrow.csv.ConvertOptions(column_types={c: "string" for c in columns}),
            )
            key, latest, marker, cls = "Key", "IsLatest", "IsDeleteMarker", "StorageClass"
        else:
            reader = pyarrow.parquet.read_table if fmt == "PARQUET" else lambda b: pyarrow.orc.ORCFile(b).read()
            table = reader(io.BytesIO(body))
            key, latest, marker, cls = "key", "is_latest", "is_delete_marker", "storage_class"
        names = set(table.column_names)
        rows = zip(*(table.column(c).to_pylist() if c in names else [None] * table.num_rows for c in (key, latest, marker, cls)))
        for k, is_latest, is_marker, storage in rows:
            if str(is_latest).lower() == "false" or str(is_marker).lower() == "true":
                continue
            if storage in ("GLACIER", "DEEP_ARCHIVE"):
                continue
            if fmt == "CSV":
                k = urllib.parse.unquote_plus(k)
            url = s3.generate_presigned_url("get_object", Params={"Bucket": source, "Key": k}, ExpiresIn=86400)
            f.write(json.dumps({"name": k.replace("/", "__"), "url": url}) + "\n")
