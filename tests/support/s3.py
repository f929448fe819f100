"""S3 on moto's server (the ``sqs_endpoint`` serves every AWS service): buckets and objects for tests."""

from __future__ import annotations

from typing import Any

import boto3

from tests.support.servers import unique_name

__all__ = ["create_bucket", "s3_client"]


def s3_client(endpoint: str) -> Any:
    """A plain boto3 S3 client for the test's own setup and checks."""
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def create_bucket(endpoint: str) -> str:
    """A new bucket no other test uses; its name."""
    name = unique_name("jp-")
    s3_client(endpoint).create_bucket(Bucket=name)
    return name
