"""Submitting and what comes after, from Python, against the Roboflow stand-in
(`roboflow-standin`, which checks every request against the API contract): a
source submitted, waited for, a job run and its results downloaded; then the
batch, the job and an export as plain data; errors one line with no key."""

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

import refgen

S3 = os.environ.get("REFGEN_TEST_S3_ENDPOINT")
pytestmark = pytest.mark.skipif(not S3, reason="REFGEN_TEST_S3_ENDPOINT not set (scripts/test.sh starts the servers)")
KEYS = ["cats/a.jpg", "cats/b c.jpg", "dogs/d.png"]


@pytest.fixture(scope="module")
def standin():
    """The stand-in, its address and key in the environment as a user's would be."""
    binary = Path(os.environ["REFGEN_BIN"]).with_name("roboflow-standin")
    process = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    hello = json.loads(process.stdout.readline())
    saved = dict(os.environ)
    os.environ.update(API_BASE_URL=hello["base_url"], ROBOFLOW_API_KEY=hello["api_key"])
    yield hello
    os.environ.clear()
    os.environ.update(saved)
    process.stdin.close()
    seen = json.loads(process.stdout.readline())
    assert process.wait(timeout=10) == 0 and seen["violations"] == [], seen["violations"]


@pytest.fixture(scope="module")
def bucket():
    import boto3

    s3 = boto3.client("s3", endpoint_url=S3)
    name = f"py-submit-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    for key in KEYS:
        s3.put_object(Bucket=name, Key=key, Body=key.encode())
    return name


def test_submit_waits_runs_the_job_and_downloads(standin, bucket, tmp_path):
    report = refgen.submit(
        "py-batch", f"s3://{bucket}/", images=True, upload_to=f"s3://{bucket}/refs/py.jsonl",
        wait=True, poll=0.2, timeout=60, workflow_id="detect", job_id="py-job-1",
        download_results=tmp_path / "results",
    )
    assert report["outcome"] == "job-succeeded" and report["jobId"] == "py-job-1", report
    assert (tmp_path / "results" / "results" / "results-2.jsonl").read_text().startswith("results for")
    listed = refgen.batches()
    assert any(b.get("batchId") == "py-batch" for b in listed), listed
    whole = refgen.batch("py-batch")
    assert whole["count"] == 3 and whole["failedShards"] == 0
    assert any(j.get("jobId") == "py-job-1" for j in refgen.jobs())
    job = refgen.job("py-job-1")
    assert job["stages"], job
    summary = refgen.export("out-py-job-1", tmp_path / "export")
    assert summary["files"] == 4 and summary["downloaded"] == 4
    again = refgen.export("out-py-job-1", tmp_path / "export")
    assert (again["downloaded"], again["skipped"]) == (0, 4)


def test_submit_files_inline_and_errors_carry_no_key(standin, bucket, tmp_path):
    refs = tmp_path / "refs.jsonl"
    refgen.generate(f"s3://{bucket}/cats/", refs)
    report = refgen.submit("py-inline", references=[refs])
    assert report["references"] == 2, report
    with pytest.raises(refgen.UsageError) as bad:
        refgen.submit("bad batch id!", references=[refs])
    assert "\n" not in str(bad.value) and standin["api_key"] not in str(bad.value)
    with pytest.raises(refgen.RoboflowError) as refused:
        refgen.batch("py-batch", api_key="not-the-key-0000")
    assert "not-the-key-0000" not in str(refused.value) and standin["api_key"] not in str(refused.value)
    with pytest.raises(refgen.UsageError, match="no source"):
        refgen.submit("py-x", references=[refs], images=True)
