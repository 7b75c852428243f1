"""`import refgen` against the local servers (scripts/test.sh builds the module
with `maturin develop` and runs this with pytest): the module gives what the
command line gives, its Signer's URLs are checked by SeaweedFS (which refuses a
tampered or expired signature), and its errors are one line with no secret."""

import json
import os
import pickle
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

import refgen

S3 = os.environ.get("REFGEN_TEST_S3_ENDPOINT")
pytestmark = pytest.mark.skipif(not S3, reason="REFGEN_TEST_S3_ENDPOINT not set (scripts/test.sh starts the servers)")

KEYS = ["a.jpg", "dir/b c.jpg", "x+y/ü (1).png", "notes.txt"]


@pytest.fixture(scope="module")
def bucket():
    import boto3

    s3 = boto3.client("s3", endpoint_url=S3)
    name = f"py-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    for key in KEYS:
        s3.put_object(Bucket=name, Key=key, Body=f"bytes of {key}".encode())
    return name


def fetch(url):
    try:
        with urllib.request.urlopen(url) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_generate_writes_what_the_command_line_writes(bucket, tmp_path):
    report = refgen.generate(f"s3://{bucket}/", tmp_path / "py.jsonl", images=True, name="key")
    assert isinstance(report, refgen.Report)
    assert (report.listed, report.matched, report.written) == (4, 3, 3)
    assert report.skipped["filtered"] == 1 and not report.dry_run
    assert report.expires_in_seconds == 86400 and report.expires_at
    cli = tmp_path / "cli.jsonl"
    subprocess.run(
        [os.environ["REFGEN_BIN"], "generate", f"s3://{bucket}/", "--images", "--name", "key", "-q", "-o", cli],
        check=True,
    )
    ours, theirs = lines(tmp_path / "py.jsonl"), lines(cli)
    assert [l["name"] for l in ours] == [l["name"] for l in theirs] == sorted(KEYS[:3])
    for line in ours:
        assert fetch(line["url"]) == (200, f"bytes of {line['name']}".encode())


def test_verify_reads_the_file_and_names_what_is_wrong(bucket, tmp_path):
    good = tmp_path / "good.jsonl"
    refgen.generate(f"s3://{bucket}/", good, images=True)
    report = refgen.verify(good, sample=None, min_valid="1h")
    assert isinstance(report, refgen.VerifyReport)
    assert report.ok and report.references == 3 and report.fetched == 3 and report.expires_at
    bad = tmp_path / "bad.jsonl"
    line = json.loads(good.read_text().splitlines()[0])
    gone = dict(line, name="gone.jpg", url=line["url"].replace("a.jpg", "gone.jpg"))
    bad.write_text(json.dumps(gone) + "\nnot json\n")
    report = refgen.verify(bad, sample=None, min_valid="1h")
    assert not report.ok
    # SeaweedFS checks the signature before the key: the edited URL is refused.
    assert report.problems == {
        "bad-line": {"count": 1, "names": ["line 2"]},
        "signature-refused": {"count": 1, "names": ["gone.jpg"]},
    }
    with pytest.raises(refgen.UsageError, match="kind is `audio`"):
        refgen.verify(good, kind="audio")


def test_without_an_output_nothing_is_signed_or_written(bucket):
    report = refgen.generate(f"s3://{bucket}/", include=["dir/**"])
    assert report.dry_run and report.written == 0 and report.matched == 1
    assert report.output is None


def test_a_signer_pickles_as_its_settings_and_signs_in_the_worker(bucket):
    signer = refgen.Signer(f"s3://{bucket}/", expires_in="1h", name="flat")
    shipped = pickle.loads(pickle.dumps(signer))
    assert repr(shipped) == repr(signer)
    assert os.environ["AWS_SECRET_ACCESS_KEY"].encode() not in pickle.dumps(signer)
    urls = shipped.sign(KEYS)
    assert len(urls) == len(KEYS)
    for key, url in zip(KEYS, urls):
        assert "X-Amz-Expires=3600" in url
        assert fetch(url) == (200, f"bytes of {key}".encode())
    # SeaweedFS checks the signature: a tampered one is refused.
    tampered = urls[0][:-4] + ("0000" if not urls[0].endswith("0000") else "1111")
    assert fetch(tampered)[0] == 403
    assert shipped.references(["dir/b c.jpg"])[0][0] == "dir__b c.jpg"


def test_arrow_batches_are_signed_through_the_c_data_interface(bucket):
    pa = pytest.importorskip("pyarrow")
    signer = refgen.Signer(f"s3://{bucket}/", name="flat")
    batch = pa.record_batch({"key": KEYS, "size": list(range(len(KEYS)))})
    signed = signer.sign_batch(batch)
    assert isinstance(signed, pa.RecordBatch)
    assert signed.schema.names == ["name", "url"] and signed.num_rows == len(KEYS)
    names = signed.column("name").to_pylist()
    assert names == [n for n, _ in signer.references(KEYS)]
    for key, url in zip(KEYS, signed.column("url").to_pylist()):
        assert fetch(url) == (200, f"bytes of {key}".encode())
    # A table (in several chunks) gives the same rows.
    table = pa.concat_tables([pa.table({"key": KEYS[:2]}), pa.table({"key": KEYS[2:]})])
    assert signer.sign_batch(table).column("name").to_pylist() == names
    with pytest.raises(refgen.UsageError, match="no `key` column"):
        signer.sign_batch(pa.record_batch({"path": KEYS}))
    with pytest.raises(refgen.UsageError, match="not a string"):
        signer.sign_batch(pa.record_batch({"key": [1, 2]}))
    # Every Arrow string layout: large strings (pandas), views (Polars).
    for kind in (pa.large_string(), pa.string_view()):
        keys = pa.array(KEYS, type=kind)
        assert signer.sign_batch(pa.record_batch({"key": keys})).column("name").to_pylist() == names


def test_the_gil_is_released_while_listing_and_signing(bucket, tmp_path):
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)

    thread = threading.Thread(target=tick)
    thread.start()
    try:
        started = time.monotonic()
        for i in range(5):
            refgen.generate(f"s3://{bucket}/", tmp_path / f"{i}.jsonl")
        spent = time.monotonic() - started
    finally:
        done.set()
        thread.join()
    # The other thread ran all along (with the GIL held, it would not have).
    assert len(ticks) > spent * 100, (len(ticks), spent)


def test_errors_are_one_line_with_no_secret(bucket, tmp_path):
    with pytest.raises(refgen.UsageError, match="no scheme"):
        refgen.generate("bucket/x", tmp_path / "x.jsonl")
    with pytest.raises(refgen.UsageError, match="invalid expiry `soon`"):
        refgen.Signer(f"s3://{bucket}/", expires_in="soon")
    with pytest.raises(refgen.UsageError, match="name is `nick`"):
        refgen.Signer(f"s3://{bucket}/", name="nick")
    with pytest.raises(refgen.StorageError) as missing:
        refgen.generate(f"s3://{bucket}-missing/", tmp_path / "y.jsonl")
    assert isinstance(missing.value, refgen.RefgenError)
    assert "\n" not in str(missing.value) and "does not exist" in str(missing.value)
    assert not (tmp_path / "y.jsonl").exists(), "the target is left as it was"
    # Credentials the store refuses: the message names the failure, never the secret.
    secret = "py-secret-" + uuid.uuid4().hex
    os.environ["AWS_SECRET_ACCESS_KEY"] = secret
    try:
        with pytest.raises(refgen.StorageError) as refused:
            refgen.generate(f"s3://{bucket}/", tmp_path / "z.jsonl")
    finally:
        os.environ["AWS_SECRET_ACCESS_KEY"] = os.environ["REFGEN_TEST_S3_SECRET_KEY"]
    assert secret not in str(refused.value)
