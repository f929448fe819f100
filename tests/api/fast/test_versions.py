"""On a strawberry or graphql-core version the fast paths were not tested on, the stock path serves.

The version is faked where jobpulse reads it (``importlib.metadata.version``); each test fakes a
version no other test uses, since each version outside the range is warned about once per process.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from api.fast.http import GraphQLFastPath
from api.schema import FastSchema, JobpulseSchema, build_schema
from tests.api.fast.conftest import ServerSettings
from tests.api.fast.harness import fake_version, schema_of
from tests.api.helpers import ALICE, api_settings, run_server


@pytest.mark.parametrize("distribution", ["strawberry-graphql", "graphql-core"])
def test_an_untested_version_builds_the_stock_schema_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, distribution: str
) -> None:
    """Two schemas built on an untested version are both stock, and the version is warned about once."""
    fake = fake_version(monkeypatch, distribution)
    settings = api_settings(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schemas = [build_schema(settings), build_schema(settings)]
    assert all(type(s) is JobpulseSchema for s in schemas)
    warned = [w for w in caught if issubclass(w.category, RuntimeWarning) and fake in str(w.message)]
    assert len(warned) == 1
    assert distribution in str(warned[0].message)


async def test_an_untested_version_still_answers(
    monkeypatch: pytest.MonkeyPatch, server_settings: ServerSettings
) -> None:
    """On an untested version the server has no fast path and still submits and answers queries."""
    fake_version(monkeypatch, "strawberry-graphql")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        async with run_server(server_settings("fallback")) as server:
            assert not isinstance(schema_of(server), FastSchema)
            assert not any(m.cls is GraphQLFastPath for m in server.app.user_middleware)
            job_id = await server.submit(ALICE)
            query = "query($id: ID!) { job(id: $id) { status } }"
            for _ in range(2):
                assert await server.data(ALICE, query, id=job_id) == {"job": {"status": "PENDING"}}
