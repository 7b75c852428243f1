"""What the Python tests share: the local S3 server's settings, set in the
process's environment as a user's would be (the module and every worker it
starts read them there), and put back afterwards."""

import os

import pytest


@pytest.fixture(scope="module", autouse=True)
def s3_environment():
    endpoint = os.environ.get("REFGEN_TEST_S3_ENDPOINT")
    if not endpoint:
        yield
        return
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID=os.environ["REFGEN_TEST_S3_ACCESS_KEY"],
        AWS_SECRET_ACCESS_KEY=os.environ["REFGEN_TEST_S3_SECRET_KEY"],
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    yield
    os.environ.clear()
    os.environ.update(saved)
