"""A Signer inside a distributed engine: Dask's `LocalCluster` (two worker
processes, loopback only) maps `Signer.sign_batch` over the partitions of a
200,000-row Parquet S3 Inventory report, and the union of what the workers sign
is what `refgen generate --inventory` writes for the same report."""

import glob
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

import refgen

S3 = os.environ.get("REFGEN_TEST_S3_ENDPOINT")
pytestmark = pytest.mark.skipif(not S3, reason="REFGEN_TEST_S3_ENDPOINT not set (scripts/test.sh starts the servers)")
ROWS = 200_000
REAL = ["real/a.jpg", "real/b c.jpg"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A source bucket holding a few of the report's objects, and the report."""
    import boto3

    os.environ.update(
        AWS_ACCESS_KEY_ID=os.environ["REFGEN_TEST_S3_ACCESS_KEY"],
        AWS_SECRET_ACCESS_KEY=os.environ["REFGEN_TEST_S3_SECRET_KEY"],
        AWS_ENDPOINT_URL=S3,
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    s3 = boto3.client("s3", endpoint_url=S3)
    source, dest = f"dask-src-{uuid.uuid4().hex[:10]}", f"dask-inv-{uuid.uuid4().hex[:10]}"
    for bucket in (source, dest):
        s3.create_bucket(Bucket=bucket)
    for key in REAL:
        s3.put_object(Bucket=source, Key=key, Body=key.encode())
    rows = [{"key": k, "size": len(k)} for k in REAL]
    rows += [{"key": f"img/{i % 97:02}/{i:08} x.jpg", "size": 1000 + i % 5000} for i in range(ROWS - len(REAL))]
    work = tmp_path_factory.mktemp("inventory")
    spec = {"format": "Parquet", "source_bucket": source, "destination_bucket": dest,
            "prefix": f"{source}/daily/", "date": "2026-12-01T01-00Z", "files": 4, "rows": rows}
    (work / "spec.json").write_text(json.dumps(spec))
    out = work / "out"
    subprocess.run([sys.executable, ROOT / "scripts/inventory-fixture.py", work / "spec.json", out], check=True)
    for path in out.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), dest, str(path.relative_to(out)))
    data = sorted(glob.glob(str(out / source / "daily/data/*.parquet")))
    assert len(data) == 4
    return source, f"s3://{dest}/{source}/daily/2026-12-01T01-00Z/manifest.json", data


def sign_partition(frame, signer):
    import pyarrow as pa

    # A table: pandas' arrow-backed strings come as chunked arrays.
    table = pa.Table.from_pandas(frame[["key"]], preserve_index=False)
    return signer.sign_batch(table).to_pandas()


def without_signature(url):
    """The URL's object and settings, its time and signature left out."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in ("X-Amz-Date", "X-Amz-Signature")]
    return parts.path, sorted(query)


def test_dask_workers_sign_what_the_inventory_run_writes(report, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    source, manifest, data = report
    cli = tmp_path / "cli.jsonl"
    subprocess.run(
        [os.environ["REFGEN_BIN"], "generate", f"s3://{source}/", "--inventory", manifest, "-q", "-o", cli],
        check=True,
    )
    want = {}
    with open(cli) as f:
        for line in f:
            ref = json.loads(line)
            want[ref["name"]] = without_signature(ref["url"])
    assert len(want) == ROWS

    signer = refgen.Signer(f"s3://{source}/")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster):
        frame = dd.read_parquet(data, columns=["key"])
        assert frame.npartitions >= 2
        signed = frame.map_partitions(sign_partition, signer, meta={"name": "object", "url": "object"}).compute()
    got = dict(zip(signed["name"], (without_signature(u) for u in signed["url"])))
    assert len(got) == len(signed) == ROWS, "every row once"
    assert got == want
    # The objects that exist are read through the workers' URLs.
    for key in REAL:
        url = signed.loc[signed["name"] == key.replace("/", "__"), "url"].iloc[0]
        with urllib.request.urlopen(url) as answer:
            assert answer.read() == key.encode()
