"""``jobpulse check``: the configuration and each backend it names, on the embedded default, on the
stand-in servers (SecantusDB, moto, redis-server), and with each of them stopped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from core.backends.queue.sqs import SqsJobQueue
from core.settings import Settings
from tests.cli.startup_support import environment_for, one_line, run_jobpulse
from tests.support.servers import MongoServer, MotoServer, RedisServer, Server
from tests.support.services import BACKENDS

BUILT_IN_TYPES = ["data_analysis", "image_resize", "webhook"]


@pytest.fixture(params=BACKENDS)
def mode_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of one mode (embedded or distributed) for this test's processes."""
    return environment_for(request, tmp_path, request.param)


def rows(stdout: str) -> dict[str, str]:
    """The report's lines by check name (``{"store": "ok    store      SQLite …"}``); columns are fixed."""
    return {line[8:18].strip(): line.strip() for line in stdout.splitlines() if line.startswith("  ")}


def test_check_passes_on_the_embedded_default(tmp_path: Path) -> None:
    """With no configuration at all, every check is ok and the exit status is 0."""
    done = run_jobpulse("check", env={}, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = rows(done.stdout)
    assert report["store"].startswith("ok    store      SQLite 3.")
    assert str(tmp_path / ".jobpulse" / "jobpulse.sqlite3") in report["store"]
    assert report["bus"] == "ok    bus        in-process"
    assert "created on first start" in report["data dir"]
    assert done.stdout.strip().endswith("all well")
    assert not (tmp_path / ".jobpulse").exists()  # check reads; it creates nothing


def test_check_passes_on_the_stand_in_servers_with_versions_and_round_trips(
    distributed_env: dict[str, str],
) -> None:
    """On MongoDB, SQS and Redis, each is ok with its round trip, and MongoDB and Redis with a version."""
    done = run_jobpulse("check", env=distributed_env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = rows(done.stdout)
    assert report["store"].startswith("ok    store      MongoDB ")
    assert "ms round trip" in report["store"]
    assert report["bus"].startswith("ok    bus        Redis ")
    redis_version = report["bus"].split()[3]
    assert redis_version[0].isdigit(), report["bus"]
    assert "ms round trip" in report["queue"]
    assert "missing, created at start" in report["queue"]  # a fresh prefix: no queue yet


async def test_check_says_every_queue_exists_once_created(
    distributed_env: dict[str, str], distributed_settings: Callable[..., Settings]
) -> None:
    """After a start created the queues, check finds each job type's queue, high lane and dead-letter queue."""
    queue = await SqsJobQueue.open(distributed_settings())
    try:
        await queue.ensure_queues(BUILT_IN_TYPES)
    finally:
        await queue.close()
    done = run_jobpulse("check", env=distributed_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 9 queues exist" in rows(done.stdout)["queue"]


def test_check_fails_on_missing_queues_it_may_not_create(distributed_env: dict[str, str]) -> None:
    """With ``JOBPULSE_SQS_CREATE_QUEUES`` off, missing queues fail the check and are named."""
    env = {**distributed_env, "JOBPULSE_SQS_CREATE_QUEUES": "false"}
    done = run_jobpulse("check", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    queue = rows(done.stdout)["queue"]
    prefix = distributed_env["JOBPULSE_SQS_QUEUE_PREFIX"]
    assert queue.startswith("FAIL  queue")
    assert f"{prefix}data_analysis-dlq" in queue
    assert f"{prefix}data_analysis-high" in queue


def _stopped(kind: str) -> tuple[str, str]:
    """A server of ``kind`` started, then stopped: (the variable naming it, its URL)."""
    server: Server
    if kind == "mongodb":
        server = MongoServer()
        server.start()
        variable, url = "JOBPULSE_MONGODB_URL", server.url
    elif kind == "sqs":
        server = MotoServer()
        server.start()
        variable, url = "JOBPULSE_SQS_ENDPOINT_URL", server.endpoint
    else:
        server = RedisServer()
        server.start()
        variable, url = "JOBPULSE_REDIS_URL", server.url
    server.close()
    return variable, url


@pytest.mark.parametrize(("kind", "role"), [("mongodb", "store"), ("sqs", "queue"), ("redis", "bus")])
def test_check_fails_when_a_stand_in_is_stopped(
    distributed_env: dict[str, str], kind: str, role: str
) -> None:
    """With one server stopped, its line says not reachable, the others stay ok, and the exit is 1."""
    variable, url = _stopped(kind)
    done = run_jobpulse("check", env={**distributed_env, variable: url})
    assert done.returncode == 1, done.stdout + done.stderr
    report = rows(done.stdout)
    assert report[role].startswith(f"FAIL  {role}")
    assert "not reachable" in report[role]
    assert all(line.startswith("ok") for name, line in report.items() if name != role), done.stdout
    assert done.stdout.strip().endswith("1 problem")


def test_check_fails_on_malformed_tokens_without_showing_them(mode_env: dict[str, str]) -> None:
    """A malformed ``JOBPULSE_API_KEYS`` entry fails the tokens line, named by position."""
    done = run_jobpulse("check", env={**mode_env, "JOBPULSE_API_KEYS": "adm=root:admin,oops-secret"})
    assert done.returncode == 1, done.stdout + done.stderr
    tokens = rows(done.stdout)["tokens"]
    assert "entry 2 of 2 is not token=subject:role" in tokens
    assert "oops-secret" not in done.stdout


def test_check_counts_the_tokens_by_role(mode_env: dict[str, str]) -> None:
    """Good keys are counted by role, and never shown."""
    keys = "k-admin=root:admin,k-alice=alice:user,k-bob=bob:user"
    done = run_jobpulse("check", env={**mode_env, "JOBPULSE_API_KEYS": keys})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 API keys (1 admin, 2 user)" in rows(done.stdout)["tokens"]
    assert "k-admin" not in done.stdout


def test_check_fails_on_a_data_dir_it_cannot_write(tmp_path: Path) -> None:
    """A data directory under a file fails the data dir line and the store's."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = run_jobpulse("check", env={"JOBPULSE_DATA_DIR": str(blocker / "data")})
    assert done.returncode == 1, done.stdout + done.stderr
    report = rows(done.stdout)
    assert report["data dir"].startswith("FAIL  data dir")
    assert "is not a directory" in report["data dir"]
    assert report["store"].startswith("FAIL  store")


def test_check_json_is_one_document_with_a_verdict(mode_env: dict[str, str]) -> None:
    """``--json`` prints one JSON document: ``ok`` and each check with its backend's details."""
    done = run_jobpulse("check", "--json", env=mode_env)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is True
    by_name = {check["name"]: check for check in document["checks"]}
    assert {"tokens", "job types", "data dir", "store", "queue", "bus"} <= set(by_name)
    assert by_name["store"]["backend"]["ok"] is True


def test_check_with_an_unreadable_setting_is_one_line(mode_env: dict[str, str]) -> None:
    """A setting pydantic refuses is the usual one line and exit 2, as for every command."""
    line = one_line(run_jobpulse("check", env={**mode_env, "JOBPULSE_PORT": "eighty"}))
    assert "JOBPULSE_PORT='eighty'" in line


def test_check_shows_the_submit_rate_limit(tmp_path: Path) -> None:
    """With JOBPULSE_RATE_LIMIT set, check says what it is and where it is counted."""
    done = run_jobpulse("check", env={"JOBPULSE_RATE_LIMIT": "100/1s"}, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(done.stdout)["rate limit"].endswith("100 per 1 second per token subject, counted in memory")


def test_a_malformed_rate_limit_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """JOBPULSE_RATE_LIMIT=abc stops check (and every start) with one line naming the variable."""
    line = one_line(run_jobpulse("check", env={"JOBPULSE_RATE_LIMIT": "abc"}, cwd=tmp_path))
    assert "JOBPULSE_RATE_LIMIT" in line and "100/1s" in line
