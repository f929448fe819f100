"""The payload schemas the API shows as ``payloadSchema``."""

from __future__ import annotations

from typing import Any

import pytest

from core.jobtypes import JobType
from workers.handlers import BUILTIN_JOB_TYPES


@pytest.mark.parametrize("job_type", BUILTIN_JOB_TYPES, ids=lambda t: t.name)
def test_every_field_is_described_with_examples(job_type: JobType[Any]) -> None:
    """Each payload field has a description and at least one example."""
    schema = job_type.payload_schema()
    properties = schema["properties"]
    assert isinstance(properties, dict)
    for name, field in properties.items():
        assert isinstance(field, dict)
        assert field.get("description"), f"{job_type.name}.{name} has no description"
        assert field.get("examples"), f"{job_type.name}.{name} has no examples"


@pytest.mark.parametrize("job_type", BUILTIN_JOB_TYPES, ids=lambda t: t.name)
def test_schema_examples_are_valid_payloads(job_type: JobType[Any]) -> None:
    """The whole-payload examples in the schema pass the type's own validation."""
    examples = job_type.payload_schema()["examples"]
    assert isinstance(examples, list) and examples
    for example in examples:
        job_type.parse(example)
