"""Configuration and start-up errors of ``serve``, ``api`` and ``worker``: one line on stderr, exit 2.

One test per row of issue 18's table, each in a real ``jobpulse`` subprocess, plus the rules
around them (``--debug``, masking, nothing started). ``JOBPULSE_STARTUP_TIMEOUT`` is 0 unless a
test says otherwise: a backend that is down fails at once.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.cli.startup_support import environment_for, one_line, run_jobpulse
from tests.support.servers import free_port
from tests.support.services import BACKENDS


@pytest.fixture(params=BACKENDS)
def mode_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of one mode (embedded or distributed) for this test's processes."""
    return environment_for(request, tmp_path, request.param)


def test_garbage_api_keys_are_one_line_naming_the_variable_and_its_shape(mode_env: dict[str, str]) -> None:
    """``JOBPULSE_API_KEYS=garbage`` makes ``serve`` print which entry is wrong and the shape it needs."""
    line = one_line(run_jobpulse("serve", env={**mode_env, "JOBPULSE_API_KEYS": "garbage"}))
    assert "JOBPULSE_API_KEYS entry 1 of 1 is not token=subject:role" in line
    assert "garbage" not in line  # an entry may be a secret: it is named by position


def test_a_wrong_role_is_named_without_showing_the_token(mode_env: dict[str, str]) -> None:
    """An entry with an unknown role names the role and the entry's position, never its token."""
    keys = "tok-ok=alice:user,tok-secret=bob:boss"
    line = one_line(run_jobpulse("serve", env={**mode_env, "JOBPULSE_API_KEYS": keys}))
    assert "entry 2 of 2 has role 'boss'" in line
    assert "tok-secret" not in line


def test_a_data_dir_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    """A ``JOBPULSE_DATA_DIR`` under a file makes ``serve`` say so and name the variable."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line(run_jobpulse("serve", env={"JOBPULSE_DATA_DIR": str(blocker / "data")}))
    assert "JOBPULSE_DATA_DIR=" in line
    assert f"{blocker} is not a directory" in line
    assert "set JOBPULSE_DATA_DIR to a writable directory" in line


def test_an_unreachable_mongodb_is_one_line_with_the_password_masked(
    distributed_env: dict[str, str],
) -> None:
    """``api`` with MongoDB down names MongoDB, its URL with the password masked, and the variable."""
    url = f"mongodb://jobpulse:s3cret-pw@127.0.0.1:{free_port()}/"
    line = one_line(run_jobpulse("api", env={**distributed_env, "JOBPULSE_MONGODB_URL": url}))
    assert "MongoDB at mongodb://jobpulse:***@127.0.0.1:" in line
    assert "JOBPULSE_MONGODB_URL" in line
    assert "did not answer" in line
    assert "s3cret-pw" not in line


def test_an_unreachable_sqs_endpoint_is_one_line_and_no_worker_starts(
    distributed_env: dict[str, str],
) -> None:
    """``worker`` with the SQS endpoint down names SQS and its URL; no worker starts."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    done = run_jobpulse("worker", env={**distributed_env, "JOBPULSE_SQS_ENDPOINT_URL": endpoint})
    line = one_line(done)
    assert f"SQS at {endpoint} (the queue, JOBPULSE_SQS_ENDPOINT_URL) did not answer" in line
    assert "worker started" not in done.stdout + done.stderr


def test_a_port_in_use_is_one_line_and_no_worker_starts(mode_env: dict[str, str]) -> None:
    """``serve`` on a taken port says which, and its in-process workers never start."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_jobpulse("serve", env={**mode_env, "JOBPULSE_PORT": str(port)})
    line = one_line(done)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "JOBPULSE_PORT" in line
    assert "worker started" not in done.stdout + done.stderr
    assert done.stdout == ""  # not even the banner


def test_an_invalid_setting_value_names_the_variable_and_the_shape(mode_env: dict[str, str]) -> None:
    """A value pydantic refuses (``JOBPULSE_WORKER_CONCURRENCY=0``) is one line naming variable and bound."""
    line = one_line(run_jobpulse("worker", env={**mode_env, "JOBPULSE_WORKER_CONCURRENCY": "0"}))
    assert "JOBPULSE_WORKER_CONCURRENCY='0': should be greater than or equal to 1" in line


def test_debug_shows_the_traceback_above_the_line(mode_env: dict[str, str]) -> None:
    """``jobpulse --debug serve`` prints the traceback, then the same one line, and exits 2."""
    done = run_jobpulse("--debug", "serve", env={**mode_env, "JOBPULSE_API_KEYS": "garbage"})
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("jobpulse: JOBPULSE_API_KEYS entry 1 of 1")


def test_log_level_debug_shows_the_traceback_too(mode_env: dict[str, str]) -> None:
    """``JOBPULSE_LOG_LEVEL=DEBUG`` shows the traceback as ``--debug`` does."""
    env = {**mode_env, "JOBPULSE_API_KEYS": "garbage", "JOBPULSE_LOG_LEVEL": "DEBUG"}
    done = run_jobpulse("serve", env=env)
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr


def test_an_unknown_worker_type_is_one_line_listing_the_known_ones(mode_env: dict[str, str]) -> None:
    """``worker --types nope`` names the unknown type and the known ones; no worker starts."""
    done = run_jobpulse("worker", "--types", "nope", env=mode_env)
    line = one_line(done)
    assert "unknown job type 'nope' in --types" in line
    assert "data_analysis" in line
    assert "worker started" not in done.stdout
