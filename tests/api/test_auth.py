"""Bearer tokens over HTTP and websockets: API keys, JWTs, the generated admin token."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from api.auth import Authenticator, load_or_create_admin_token, parse_api_keys
from core.errors import ConfigurationError, ForbiddenError, UnauthenticatedError
from core.models import Principal
from core.ports import JobFilter
from core.settings import Settings
from tests.api.helpers import ALICE, DEADLINE, JWT_SECRET, Server, make_jwt, run_server

WHO = "{ jobs { totalCount } }"


def test_api_keys_map_tokens_to_principals() -> None:
    """JOBPULSE_API_KEYS entries `token=subject:role` name each token's principal."""
    auth = Authenticator(
        api_keys=parse_api_keys("t1=alice:user, t2=ops:admin"), jwt_secret=None, admin_token=None
    )

    assert auth.authenticate("Bearer t1").principal == Principal("alice", "user")
    assert auth.authenticate("bearer t2").principal == Principal("ops", "admin")


@pytest.mark.parametrize("entry", ["t1", "t1=alice", "t1=alice:owner", "=alice:user"])
def test_malformed_api_keys_are_a_configuration_error(entry: str) -> None:
    """An API key entry without subject or with an unknown role is refused at start."""
    with pytest.raises(ConfigurationError):
        parse_api_keys(entry)


@pytest.mark.parametrize("header", [None, "", "t1", "Basic t1", "Bearer", "Bearer wrong"])
def test_missing_or_wrong_tokens_are_unauthenticated(header: str | None) -> None:
    """No header, another scheme, or an unknown token is UnauthenticatedError."""
    auth = Authenticator(api_keys=parse_api_keys("t1=alice:user"), jwt_secret=JWT_SECRET, admin_token=None)

    with pytest.raises(UnauthenticatedError):
        auth.authenticate(header)


def test_jwts_signed_with_the_secret_are_accepted() -> None:
    """An HS256 JWT with sub, role and exp signed with the secret names its principal."""
    auth = Authenticator(api_keys={}, jwt_secret=JWT_SECRET, admin_token=None)

    identity = auth.authenticate(f"Bearer {make_jwt('carol', 'admin')}")

    assert identity.principal == Principal("carol", "admin")
    assert identity.expires_at is not None


@pytest.mark.parametrize(
    "token",
    [make_jwt("carol", expires_in=-10), make_jwt("carol", secret="another-secret-of-at-least-32-bytes!")],
    ids=["expired", "wrong-secret"],
)
def test_expired_or_forged_jwts_are_unauthenticated(token: str) -> None:
    """An expired JWT, or one signed with another secret, is UnauthenticatedError."""
    auth = Authenticator(api_keys={}, jwt_secret=JWT_SECRET, admin_token=None)

    with pytest.raises(UnauthenticatedError):
        auth.authenticate(f"Bearer {token}")


def test_a_jwt_is_verified_once_and_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same JWT on every request is verified once; remembered, it is still refused after its
    ``exp`` with the words a fresh verification uses, and a forged one is never remembered."""
    now = [datetime.now(UTC)]
    auth = Authenticator(api_keys={}, jwt_secret=JWT_SECRET, admin_token=None, clock=lambda: now[0])
    decode, decoded = jwt.decode, []

    def counting(*args: Any, **kwargs: Any) -> Any:
        decoded.append(args[0])
        return decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    token = make_jwt("carol", expires_in=60)
    forged = make_jwt("carol", secret="another-secret-of-at-least-32-bytes!")
    expired = make_jwt("carol", expires_in=-10)

    identities = [auth.authenticate(f"Bearer {token}") for _ in range(3)]
    for _ in range(2):
        with pytest.raises(UnauthenticatedError):
            auth.authenticate(f"Bearer {forged}")
    now[0] += timedelta(seconds=61)
    with pytest.raises(UnauthenticatedError) as remembered:
        auth.authenticate(f"Bearer {token}")
    with pytest.raises(UnauthenticatedError) as fresh:
        Authenticator(api_keys={}, jwt_secret=JWT_SECRET, admin_token=None).authenticate(f"Bearer {expired}")

    assert {i.principal for i in identities} == {Principal("carol", "user")}
    assert decoded == [token, forged, forged, expired]
    assert str(remembered.value) == str(fresh.value)


def test_jwt_with_an_unknown_role_is_forbidden() -> None:
    """A genuine JWT whose role is neither user nor admin is ForbiddenError."""
    auth = Authenticator(api_keys={}, jwt_secret=JWT_SECRET, admin_token=None)

    with pytest.raises(ForbiddenError):
        auth.authenticate(f"Bearer {make_jwt('carol', 'guest')}")


def test_admin_token_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    """With nothing configured, an admin token is generated in the data dir (mode 0600) and reused."""
    settings = Settings(data_dir=tmp_path / "data")

    first = load_or_create_admin_token(settings)
    second = load_or_create_admin_token(Settings(data_dir=tmp_path / "data"))

    assert first is not None and first == second
    files = list((tmp_path / "data").iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


@pytest.mark.parametrize("configured", [{"api_keys": "t=a:user"}, {"jwt_secret": JWT_SECRET}])
def test_no_admin_token_when_keys_or_jwt_are_configured(tmp_path: Path, configured: dict[str, str]) -> None:
    """API keys or a JWT secret mean no generated token."""
    assert load_or_create_admin_token(Settings(data_dir=tmp_path, **configured)) is None
    assert list(tmp_path.iterdir()) == []


async def test_generated_admin_token_opens_the_api(tmp_path: Path) -> None:
    """A server with no keys accepts its generated admin token, and nothing else."""
    settings = Settings(data_dir=tmp_path / "data")
    async with run_server(settings) as server:
        token = load_or_create_admin_token(settings)
        assert token is not None

        assert (await server.data(token, "{ stats { totalJobs } }")) == {"stats": {"totalJobs": 0}}
        refused = await server.graphql("guess", WHO)
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("token", [None, "wrong"], ids=["missing", "wrong"])
async def test_http_without_a_valid_token_is_unauthenticated(server: Server, token: str | None) -> None:
    """A missing or wrong token gets one error coded UNAUTHENTICATED and no data."""
    body = await server.graphql(token, WHO)

    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


async def test_mutations_do_not_run_without_a_token(server: Server) -> None:
    """An unauthenticated mutation creates nothing."""
    body = await server.graphql(
        None, 'mutation { submitJob(input: {type: "noop", payload: {}}) { __typename } }'
    )

    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await server.service.store.count_jobs(JobFilter()) == 0


async def test_http_accepts_a_jwt(server: Server) -> None:
    """A JWT signed with JOBPULSE_JWT_SECRET works as a bearer token over HTTP."""
    token = make_jwt("carol")
    job_id = await server.submit(token)

    assert (await server.stored(job_id)).owner == "carol"


async def test_http_with_an_expired_jwt_is_unauthenticated(server: Server) -> None:
    """An expired JWT over HTTP is UNAUTHENTICATED."""
    body = await server.graphql(make_jwt("carol", expires_in=-5), WHO)

    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_http_with_a_jwt_of_unknown_role_is_forbidden(server: Server) -> None:
    """A genuine JWT with a role the API does not know is FORBIDDEN."""
    body = await server.graphql(make_jwt("carol", "guest"), WHO)

    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def _close_code(server: Server, payload: dict[str, object]) -> int:
    """Open a graphql-transport-ws socket, send ``connection_init`` with ``payload``, return the close code."""
    async with websockets.connect(
        server.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), DEADLINE)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


@pytest.mark.parametrize("payload", [{}, {"authorization": "Bearer wrong"}, {"authorization": 42}])
async def test_websocket_without_a_valid_token_closes_4401(
    server: Server, payload: dict[str, object]
) -> None:
    """connection_init with no token or a wrong one closes the socket with 4401."""
    assert await _close_code(server, payload) == 4401


async def test_websocket_with_a_token_not_allowed_closes_4403(server: Server) -> None:
    """connection_init with a genuine token whose role may not use the API closes with 4403."""
    assert await _close_code(server, {"authorization": f"Bearer {make_jwt('carol', 'guest')}"}) == 4403


async def test_websocket_with_a_valid_token_is_acknowledged(server: Server) -> None:
    """connection_init with a valid token is answered connection_ack."""
    async with websockets.connect(
        server.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {ALICE}"}})
        )
        reply = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))

    assert reply["type"] == "connection_ack"


async def test_websocket_speaks_only_graphql_transport_ws(server: Server) -> None:
    """The legacy graphql-ws subprotocol is not offered."""
    async with websockets.connect(server.ws_url, subprotocols=[websockets.Subprotocol("graphql-ws")]) as ws:
        assert ws.subprotocol is None
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), DEADLINE)

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4406
