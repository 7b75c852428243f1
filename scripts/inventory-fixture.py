#!/usr/bin/env python3
"""Writes an S3 Inventory report as S3 lays it out, for the tests.

    inventory-fixture.py SPEC.json OUTDIR

SPEC: {"format": "CSV"|"Parquet"|"ORC", "source_bucket", "destination_bucket", "prefix"
(SRC/CONFIG/), "date" (2026-11-30T01-00Z), "files" (data files to spread the rows
over), "complete" (write manifest.checksum), "rows": [{"key", "size", "version",
"latest", "delete_marker", "class"}]}.

Under OUTDIR it writes the objects' keys as paths: PREFIX/data/DATE-<n>.csv.gz or
.parquet (S3 names them by UUID; never the same for two reports), PREFIX/DATE/manifest.json and, when complete, PREFIX/DATE/manifest.checksum.
CSV files are gzip, without a header, every field quoted, columns in fileSchema
order, keys URL-encoded form-style (a space is `+`, `+` is `%2B`, `/` and `*` stay);
Parquet files (pyarrow) hold raw keys in snake_case columns.
"""
import csv
import gzip
import hashlib
import io
import json
import os
import sys
import urllib.parse

spec = json.load(open(sys.argv[1]))
out = sys.argv[2]


def azure_report():
    """Azure Blob Inventory: PREFIX/<rule>_<n>.csv (header row) or .parquet, and
    PREFIX/<rule>-manifest.json; Name is container/blob, for every container."""
    rule = spec.get("rule", "Rule_1")
    fields = ["Name", "Creation-Time", "Last-Modified", "Content-Length", "AccessTier"]
    n = max(1, spec.get("files", 1))
    files = []
    rows = spec["rows"]
    for i, chunk in enumerate(rows[i::n] for i in range(n)):
        names = [r["name"] for r in chunk]
        sizes = [r.get("size", 0) for r in chunk]
        tiers = [r.get("tier", "Hot") for r in chunk]
        when = "2026-11-30T01:00:00.0000000Z"
        if spec["format"] == "csv":
            text = io.StringIO()
            w = csv.writer(text, lineterminator="\n")
            w.writerow(fields)
            for name, size, tier in zip(names, sizes, tiers):
                w.writerow([name, when, when, size, tier])
            data = text.getvalue().encode()
            key = f"{spec['prefix']}{rule}_{i}.csv"
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq
            table = pa.table({"Name": names, "Creation-Time": [when] * len(names), "Last-Modified": [when] * len(names),
                              "Content-Length": pa.array(sizes, pa.int64()), "AccessTier": tiers})
            sink = io.BytesIO()
            pq.write_table(table, sink)
            data = sink.getvalue()
            key = f"{spec['prefix']}{rule}_{i}.parquet"
        path = os.path.join(out, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        files.append({"blob": key, "size": len(data)})
    manifest = {
        "destinationContainer": spec["destination_container"],
        "endpoint": "https://account.blob.core.windows.net",
        "files": files,
        "inventoryCompletionTime": "2026-11-30T01:10:00Z",
        "inventoryStartTime": "2026-11-30T01:00:00Z",
        "ruleDefinition": {"filters": {"blobTypes": ["blockBlob"]}, "format": spec["format"],
                           "objectType": "blob", "schedule": "daily", "schemaFields": fields},
        "ruleName": rule,
        "status": spec.get("status", "Succeeded"),
        "summary": {"objectCount": len(rows), "totalObjectSize": sum(r.get("size", 0) for r in rows)},
        "version": "1.0",
    }
    path = os.path.join(out, f"{spec['prefix']}{rule}-manifest.json")
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)


def gcs_report():
    """GCS Storage Insights: PREFIX/CONFIG_SNAPSHOT_<n>.csv (header row) or .parquet
    and PREFIX/CONFIG_SNAPSHOT_manifest.json naming them."""
    fields = ["project", "bucket", "name", "size", "storageClass"]
    base = f"{spec['prefix']}{spec.get('config', 'cfg')}_{spec.get('snapshot', '2026-11-30T01:00:00')}_"
    n = max(1, spec.get("files", 1))
    rows = spec["rows"]
    names = []
    for i, chunk in enumerate(rows[i::n] for i in range(n)):
        if spec["format"] == "csv":
            text = io.StringIO()
            w = csv.writer(text, lineterminator="\n")
            w.writerow(fields)
            for r in chunk:
                w.writerow(["proj", spec["source_bucket"], r["key"], r.get("size", 0), r.get("class", "STANDARD")])
            data, key = text.getvalue().encode(), f"{base}{i}.csv"
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq
            table = pa.table({"project": ["proj"] * len(chunk), "bucket": [spec["source_bucket"]] * len(chunk),
                              "name": [r["key"] for r in chunk],
                              "size": pa.array([r.get("size", 0) for r in chunk], pa.int64()),
                              "storageClass": [r.get("class", "STANDARD") for r in chunk]})
            sink = io.BytesIO()
            pq.write_table(table, sink)
            data, key = sink.getvalue(), f"{base}{i}.parquet"
        path = os.path.join(out, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        names.append(os.path.basename(key))
    manifest = {
        "report_config": {"name": "projects/p/locations/us/reportConfigs/cfg",
                          "csv_options": {"record_separator": "\n", "delimiter": ",", "header_required": True},
                          "object_metadata_report_options": {"metadata_fields": fields}},
        "records_processed": len(rows),
        "snapshot_time": spec.get("snapshot", "2026-11-30T01:00:00") + "Z",
        "shard_count": len(names),
        "report_shards_file_names": names,
    }
    with open(os.path.join(out, base + "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)


if spec.get("flavor") == "azure":
    azure_report()
    sys.exit(0)
if spec.get("flavor") == "gcs":
    gcs_report()
    sys.exit(0)
prefix = spec["prefix"]
rows = spec.get("rows") or [
    # A synthetic report for the benchmark: N current objects in 100 folders.
    {"key": f"img/{i % 100:02}/{i:08}.jpg", "size": 1000 + i % 5000, "version": ""}
    for i in range(spec.get("synthetic_rows", 0))
]
n = max(1, spec.get("files", 1))
chunks = [rows[i::n] for i in range(n)]
files = []
csv_schema = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, StorageClass"
# With "encryption": true, the report has S3's EncryptionStatus column (a row's
# "encryption", default SSE-S3).
encryption = spec.get("encryption", False)
if encryption:
    csv_schema += ", EncryptionStatus"


def write(key, data):
    path = os.path.join(out, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    files.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})


for i, chunk in enumerate(chunks):
    if spec["format"] == "CSV":
        text = io.StringIO()
        w = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for r in chunk:
            w.writerow([
                spec["source_bucket"],
                urllib.parse.quote_plus(r["key"], safe="/*"),
                r.get("version", ""),
                "true" if r.get("latest", True) else "false",
                "true" if r.get("delete_marker", False) else "false",
                "" if r.get("delete_marker") else str(r.get("size", 0)),
                "" if r.get("delete_marker") else r.get("class", "STANDARD"),
            ] + ([r.get("encryption", "SSE-S3")] if encryption else []))
        write(f"{prefix}data/{spec['date']}-{i:04d}.csv.gz", gzip.compress(text.getvalue().encode()))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq
        table = pa.table({
            "bucket": [spec["source_bucket"]] * len(chunk),
            "key": [r["key"] for r in chunk],
            "version_id": [r.get("version", "") for r in chunk],
            "is_latest": [bool(r.get("latest", True)) for r in chunk],
            "is_delete_marker": [bool(r.get("delete_marker", False)) for r in chunk],
            "size": pa.array([None if r.get("delete_marker") else r.get("size", 0) for r in chunk], pa.int64()),
            "storage_class": [None if r.get("delete_marker") else r.get("class", "STANDARD") for r in chunk],
            **({"encryption_status": [r.get("encryption", "SSE-S3") for r in chunk]} if encryption else {}),
        })
        sink = io.BytesIO()
        if spec["format"] == "ORC":
            import pyarrow.orc as orc
            orc.write_table(table, sink, compression="zlib")
            write(f"{prefix}data/{spec['date']}-{i:04d}.orc", sink.getvalue())
        else:
            pq.write_table(table, sink, compression="snappy")
            write(f"{prefix}data/{spec['date']}-{i:04d}.parquet", sink.getvalue())

schema = csv_schema if spec["format"] == "CSV" else (
    "struct<bucket:string,key:string,version_id:string,is_latest:boolean,is_delete_marker:boolean,"
    "size:bigint,storage_class:string" + (",encryption_status:string" if encryption else "") + ">"
) if spec["format"] == "ORC" else (
    "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); "
    "optional binary version_id (UTF8); optional boolean is_latest; optional boolean is_delete_marker; "
    "optional int64 size; optional binary storage_class (UTF8); "
    + ("optional binary encryption_status (UTF8); " if encryption else "") + "}"
)
if spec.get("empty"):
    # A manifest that lists no data file (S3 writes one for an empty bucket).
    files = []
manifest = json.dumps({
    "sourceBucket": spec["source_bucket"],
    "destinationBucket": "arn:aws:s3:::" + spec["destination_bucket"],
    "version": "2016-11-30",
    "creationTimestamp": "1764464400000",
    "fileFormat": spec["format"],
    "fileSchema": schema,
    "files": files,
}, indent=2).encode()
folder = f"{prefix}{spec['date']}/"
path = os.path.join(out, folder)
os.makedirs(path, exist_ok=True)
with open(os.path.join(path, "manifest.json"), "wb") as f:
    f.write(manifest)
if spec.get("complete", True):
    with open(os.path.join(path, "manifest.checksum"), "w") as f:
        f.write(hashlib.md5(manifest).hexdigest() + "\n")
