"""`refgen.plan` and `refgen.generate(plan=…, shard=…)`: the parts of a plan,
listed one by one as a Ray or Dask job's tasks would, together give what one
run gives, each object once; the plan file is the command line's."""

import json
import os
import subprocess
import uuid

import pytest

import refgen

S3 = os.environ.get("REFGEN_TEST_S3_ENDPOINT")
pytestmark = pytest.mark.skipif(not S3, reason="REFGEN_TEST_S3_ENDPOINT not set (scripts/test.sh starts the servers)")

KEYS = [f"cam{c}/{i:04}.jpg" for c in range(3) for i in range(150)] + ["readme.txt"]


@pytest.fixture(scope="module")
def bucket():
    import boto3

    s3 = boto3.client("s3", endpoint_url=S3)
    name = f"py-plan-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    for key in KEYS:
        s3.put_object(Bucket=name, Key=key, Body=b"x")
    return name


def names(path):
    with open(path) as f:
        return [json.loads(line)["name"] for line in f]


def test_the_parts_of_a_plan_together_are_the_whole_run(bucket, tmp_path):
    plan = refgen.plan(f"s3://{bucket}/", 4, tmp_path / "plan.json", images=True)
    assert isinstance(plan, refgen.RangePlan) and len(plan) == 4
    assert plan.exact and plan.estimated_objects == len(KEYS)
    assert plan.parts[0]["after"] is None and plan.parts[-1]["until"] is None
    assert refgen.RangePlan.read(tmp_path / "plan.json") == plan
    union = []
    for k in range(len(plan)):
        out = tmp_path / f"part-{k}.jsonl"
        # Alternately the plan and its file, an index and "K/N".
        report = refgen.generate(
            output=out, name="key", plan=plan if k % 2 else tmp_path / "plan.json", shard=k if k < 2 else f"{k}/4"
        )
        assert report.shard == f"{k}/4" and report.plan == plan.fingerprint
        assert report.range == {"after": plan.parts[k]["after"], "until": plan.parts[k]["until"]}
        union += names(out)
    whole = tmp_path / "whole.jsonl"
    refgen.generate(f"s3://{bucket}/", whole, images=True, name="key")
    assert sorted(union) == sorted(names(whole)) and len(union) == len(set(union)) == 450
    # The command line reads the module's plan file, and lists the same part.
    cli = tmp_path / "cli.jsonl"
    subprocess.run(
        [os.environ["REFGEN_BIN"], "generate", "--plan", tmp_path / "plan.json", "--shard", "2/4",
         "--name", "key", "-q", "-o", cli],
        check=True,
    )
    assert names(cli) == names(tmp_path / "part-2.jsonl")


def test_a_plan_refuses_what_does_not_fit(bucket, tmp_path):
    plan = refgen.plan(f"s3://{bucket}/", 3)
    with pytest.raises(refgen.UsageError, match="3 parts"):
        refgen.generate(plan=plan, shard="0/4")
    with pytest.raises(refgen.UsageError, match="selection"):
        refgen.generate(plan=plan, shard=0, images=True)
    with pytest.raises(refgen.UsageError, match="an index needs a plan"):
        refgen.generate(f"s3://{bucket}/", shard=1)
    with pytest.raises(refgen.UsageError, match="byte order"):
        refgen.plan(str(tmp_path), 2)
    edited = json.loads(plan.to_json())
    edited["parts"][0]["until"] = edited["parts"][1]["after"] = "cam1/"
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    with pytest.raises(refgen.UsageError, match="fingerprint"):
        refgen.generate(plan=tmp_path / "edited.json", shard=0)


def generate_part(plan, k, folder):
    """One task of a distributed run: part ``k`` of the plan into its own file."""
    out = os.path.join(folder, f"refs-{k:05}.jsonl")
    report = refgen.generate(output=out, plan=plan, shard=k, name="key")
    return out, report.written


def test_dask_workers_list_a_part_each(bucket, tmp_path):
    distributed = pytest.importorskip("distributed")
    plan = refgen.plan(f"s3://{bucket}/", 6)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        done = client.gather(client.map(generate_part, [plan] * len(plan), range(len(plan)), [str(tmp_path)] * len(plan)))
    union = [name for out, _ in done for name in names(out)]
    assert sum(written for _, written in done) == len(KEYS)
    assert sorted(union) == sorted(KEYS)
