"""A Signer inside the distributed engines: Dask's `LocalCluster` (two worker
processes, loopback only), Spark in `local[2]` (`mapInArrow`) and Ray on a
local two-CPU node (`map_batches(batch_format="pyarrow")`) map
`Signer.sign_batch` over a 200,000-row Parquet S3 Inventory report, and the union
of what the workers sign is what `refgen generate --inventory` writes for the
same report."""

import glob
import json
import os
import shutil
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


@pytest.fixture(scope="module")
def cli_output(report, tmp_path_factory):
    """Name → URL (without its date and signature) of `refgen generate --inventory`."""
    source, manifest, _ = report
    cli = tmp_path_factory.mktemp("cli") / "cli.jsonl"
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
    return want


def check_signed(names, urls, want):
    """Every row once, as the command line signs it; the objects that exist are read."""
    got = dict(zip(names, (without_signature(u) for u in urls)))
    assert len(got) == len(names) == ROWS, "every row once"
    assert got == want
    by_name = dict(zip(names, urls))
    for key in REAL:
        with urllib.request.urlopen(by_name[key.replace("/", "__")]) as answer:
            assert answer.read() == key.encode()


def test_dask_workers_sign_what_the_inventory_run_writes(report, cli_output):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    source, _, data = report

    signer = refgen.Signer(f"s3://{source}/")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster):
        frame = dd.read_parquet(data, columns=["key"])
        assert frame.npartitions >= 2
        signed = frame.map_partitions(sign_partition, signer, meta={"name": "object", "url": "object"}).compute()
    check_signed(list(signed["name"]), list(signed["url"]), cli_output)


def test_spark_map_in_arrow_signs_what_the_inventory_run_writes(report, cli_output):
    pyspark = pytest.importorskip("pyspark.sql")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime (.ci/run installs Debian's default-jre-headless)")
    source, _, data = report
    signer = refgen.Signer(f"s3://{source}/")
    # Spark's Python workers run this interpreter, where refgen is installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable

    def sign(batches):
        for batch in batches:
            yield signer.sign_batch(batch)

    spark = (
        pyspark.SparkSession.builder.master("local[2]")
        .appName("refgen-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    try:
        frame = spark.read.parquet(*data).select("key")
        rows = frame.mapInArrow(sign, "name string, url string").collect()
    finally:
        spark.stop()
    check_signed([r["name"] for r in rows], [r["url"] for r in rows], cli_output)


def test_ray_map_batches_signs_what_the_inventory_run_writes(report, cli_output):
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray = pytest.importorskip("ray")
    import ray.data

    source, _, data = report
    signer = refgen.Signer(f"s3://{source}/")

    # Defined here, so that Ray ships it by value (Ray's map_batches takes
    # tables back, not record batches).
    def sign(table):
        import pyarrow as pa

        return pa.Table.from_batches([signer.sign_batch(table)])

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        signed = (
            # The report's files read here and handed to Ray in four blocks (Ray's
            # own Parquet reader resolves paths through fsspec's HTTP support,
            # which needs aiohttp, not installed).
            ray.data.from_arrow(read_keys(data))
            .repartition(4)
            .map_batches(sign, batch_format="pyarrow")
            .to_arrow_refs()
        )
        table = pa_concat(ray.get(signed))
    finally:
        ray.shutdown()
    check_signed(table.column("name").to_pylist(), table.column("url").to_pylist(), cli_output)


def read_keys(files):
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa.concat_tables([pq.read_table(f, columns=["key"]) for f in files])


def pa_concat(tables):
    import pyarrow as pa

    return pa.concat_tables(tables)
