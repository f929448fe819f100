"""The OpenAPI document and the docs page: served without a token, generated from the request models."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from api.rest.models import SubmitJobBody
from api.rest.openapi import openapi_document
from tests.api.helpers import ALICE, Server


async def test_openapi_document_needs_no_token(server: Server) -> None:
    """``/api/v1/openapi.json`` answers an OpenAPI 3.1 document, with every path written in full."""
    async with server.http() as client:
        response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/api/v1/jobs",
        "/api/v1/jobs/cancel",
        "/api/v1/jobs/retry",
        "/api/v1/jobs/{id}",
        "/api/v1/jobs/{id}/cancel",
        "/api/v1/jobs/{id}/retry",
        "/api/v1/stats",
    }


def test_submit_schema_is_the_validating_models() -> None:
    """The submit body's schema is the JSON Schema of the pydantic model that validates submits."""
    document = openapi_document()
    body = document["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/SubmitJobBody"}
    expected = SubmitJobBody.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = expected.pop("$defs", {})
    assert document["components"]["schemas"]["SubmitJobBody"] == expected
    assert definitions.items() <= document["components"]["schemas"].items()
    assert expected["additionalProperties"] is False
    assert {"type", "payload", "delaySeconds", "idempotencyKey"} <= set(expected["properties"])


def test_every_reference_resolves() -> None:
    """Every ``$ref`` in the document names a schema the document holds."""
    document = openapi_document()
    schemas = document["components"]["schemas"]
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs and all(ref.removeprefix("#/components/schemas/") in schemas for ref in refs)


async def test_docs_page_is_served_offline(server: Server) -> None:
    """``/api/v1/docs`` loads the vendored Swagger UI from this server, not from a CDN."""
    async with server.http() as client:
        page = await client.get("/api/v1/docs")
        bundle = await client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
        starter = await client.get("/static/api-docs.js")
    assert page.status_code == 200 and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "https://" not in page.text
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
    assert "/api/v1/openapi.json" in starter.text


async def test_curl_submits_and_reads_a_job(server: Server) -> None:
    """``curl`` as a user would: POST a job with a token, then GET its Location."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is not installed")
    auth = ["-H", f"Authorization: Bearer {ALICE}"]
    submitted = await run(
        curl, "-sS", "-i", *auth, "-H", "Content-Type: application/json",
        "-d", '{"type": "noop", "payload": {"from": "curl"}}', f"{server.url}/api/v1/jobs",
    )  # fmt: skip
    head, _, _ = submitted.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 202")
    location = next(
        line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith("location:")
    )
    fetched = await run(curl, "-sS", "--fail-with-body", *auth, f"{server.url}{location}")
    assert '"from":"curl"' in fetched and '"owner":"alice"' in fetched


async def run(*command: str) -> str:
    """``command``'s output (the server runs on this loop: the command must not block it)."""
    process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output
    return output.decode()
