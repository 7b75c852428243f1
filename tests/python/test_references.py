"""`refgen.references`: a run's references handed over as they are signed, as
pairs or Arrow batches, over a 100,000-object bucket with memory that stays
flat; and Ctrl-C stopping a call that waits (the target left as it was)."""

import _thread
import json
import os
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest

import refgen

S3 = os.environ.get("REFGEN_TEST_S3_ENDPOINT")
pytestmark = pytest.mark.skipif(not S3, reason="REFGEN_TEST_S3_ENDPOINT not set (scripts/test.sh starts the servers)")
OBJECTS = 100_000


@pytest.fixture(scope="module")
def big_bucket(tmp_path_factory):
    """100,000 empty objects, written through SeaweedFS's filer (its HTTP port is
    the S3 port + 3, as scripts/s3-server.sh starts it) by curl, 32 at a time:
    a PutObject each through boto3 takes minutes."""
    port = int(urllib.parse.urlsplit(S3).port) + 3
    bucket = f"py-big-{uuid.uuid4().hex[:10]}"
    work = tmp_path_factory.mktemp("fill")
    (work / "empty").write_bytes(b"")
    with open(work / "curl.conf", "w") as config:
        for i in range(OBJECTS):
            config.write(f'url = "http://127.0.0.1:{port}/buckets/{bucket}/frames/{i % 10}/{i:06}.jpg"\n')
            config.write(f'upload-file = "{work / "empty"}"\n')
    with open(work / "answers", "wb") as answers:
        subprocess.run(
            ["curl", "--silent", "--no-progress-meter", "--show-error", "--fail", "--parallel", "--parallel-max", "32", "--config", work / "curl.conf"],
            check=True,
            stdout=answers,
        )
    return bucket


def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_pairs_stream_with_flat_memory_and_match_the_file(big_bucket, tmp_path):
    out = tmp_path / "refs.jsonl"
    refgen.generate(f"s3://{big_bucket}/", out)
    with open(out) as f:
        written = [json.loads(line) for line in f]
    # Measured after a first run (the generate above): the runtime's threads
    # and their allocator arenas are set up once, tens of MiB, whatever follows.
    base = rss()
    highest, count = base, 0
    stream = refgen.references(f"s3://{big_bucket}/")
    for name, url in stream:
        # The file's lines, in order; signed apart, the URLs differ in their
        # date and signature only.
        assert name == written[count]["name"]
        assert urllib.parse.urlsplit(url).path == urllib.parse.urlsplit(written[count]["url"]).path
        count += 1
        if count % 1000 == 0:
            highest = max(highest, rss())
    streamed = highest - base
    assert count == OBJECTS
    report = stream.report
    assert isinstance(report, refgen.Report) and report.written == OBJECTS and report.listed == OBJECTS
    # Against the same references held at once: streaming holds a few pages.
    base = rss()
    held = list(refgen.references(f"s3://{big_bucket}/"))
    materialized = rss() - base
    assert len(held) == OBJECTS
    assert streamed * 4 < materialized, f"streaming grew {streamed >> 20} MiB, holding all {materialized >> 20} MiB"


def test_batches_are_arrow_with_keys_sizes_and_expiry(big_bucket):
    pa = pytest.importorskip("pyarrow")
    batches = refgen.references(f"s3://{big_bucket}/frames/3/", batch_size=4096, name="key", expires_in="2h")
    rows = 0
    for batch in batches:
        assert isinstance(batch, pa.RecordBatch)
        assert batch.schema.names == ["name", "url", "key", "size", "expires_at"]
        assert batch.schema.field("expires_at").type == pa.timestamp("s", tz="UTC")
        assert batch.num_rows <= 4096
        assert batch.column("name").to_pylist() == batch.column("key").to_pylist()
        assert set(batch.column("size").to_pylist()) == {0}
        left = batch.column("expires_at")[0].as_py().timestamp() - time.time()
        assert 7000 < left <= 7200
        rows += batch.num_rows
    assert rows == OBJECTS // 10 and batches.report.written == rows


def test_stopping_early_stops_the_run(big_bucket):
    stream = refgen.references(f"s3://{big_bucket}/")
    first = [next(stream) for _ in range(5)]
    assert len(first) == 5 and stream.report is None
    del stream
    # The module goes on working (the abandoned run stopped on its own).
    assert len(list(refgen.references(f"s3://{big_bucket}/frames/1/", limit=10))) == 10


def test_ctrl_c_stops_a_run_and_leaves_the_target(big_bucket, tmp_path):
    out = tmp_path / "refs.jsonl"
    out.write_text("kept\n")
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        refgen.generate(f"s3://{big_bucket}/", out)
        # A run that ended first does not prove anything: wait for the interrupt.
        time.sleep(5)
    assert time.monotonic() - started < 3
    assert out.read_text() == "kept\n"
    assert [p.name for p in tmp_path.iterdir()] == ["refs.jsonl"]
