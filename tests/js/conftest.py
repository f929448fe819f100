"""Real JavaScript clients against a real ``jobpulse serve``: ``npm ci`` once, then node scripts.

``node_modules`` installs from the committed ``package-lock.json`` the first time (and again when the
lock changes); a stamp of the lock's hash marks a finished install, and a file lock keeps parallel
test workers from installing at once. ``scripts/test`` runs the same ``npm ci`` before pytest.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import JobpulseProcess, free_port
from tests.support.services import BACKENDS

JS_DIR = Path(__file__).parent
STAMP = JS_DIR / "node_modules" / ".jobpulse-lock-sha256"
ADMIN, ALICE = "js-admin", "js-alice"
KEYS = f"{ADMIN}=root:admin,{ALICE}=alice:user"
MODULES = "tests.support.jobtypes,tests.support.holdjob"
STARTUP_SECONDS = 90.0


def _lock_hash() -> str:
    return hashlib.sha256((JS_DIR / "package-lock.json").read_bytes()).hexdigest()


def install_node_modules() -> None:
    """``npm ci`` in ``tests/js`` unless ``node_modules`` already holds this lock's packages."""
    wanted = _lock_hash()
    with (JS_DIR / ".npm-ci.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if STAMP.exists() and STAMP.read_text() == wanted:
            return
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not installed (node 20 and npm are needed for tests/js)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=600)
        STAMP.write_text(wanted)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    install_node_modules()
    return JS_DIR / "node_modules"


def serve_on(request: pytest.FixtureRequest, tmp_path: Path) -> JobpulseProcess:
    """A started ``jobpulse serve`` (API and workers, the test and ``hold`` job types, tokens ``KEYS``)
    on ``request.param``'s backends: ``embedded`` or ``distributed``."""
    port = free_port()
    environment = {
        "JOBPULSE_DATA_DIR": str(tmp_path / "data"),
        "JOBPULSE_JOB_MODULES": MODULES,
        "JOBPULSE_API_KEYS": KEYS,
        "JOBPULSE_PORT": str(port),
        "JOBPULSE_SHUTDOWN_GRACE_SECONDS": "1",
        "JOBPULSE_LOG_FORMAT": "json",
    }
    if request.param == "distributed":
        environment = {
            **request.getfixturevalue("distributed_env"),
            **environment,
            "JOBPULSE_WAIT_TIME_SECONDS": "1",
        }
    return _start(JobpulseProcess(["serve"], environment, tmp_path / "serve.log", port=port))


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobpulseProcess]:
    """``jobpulse serve`` (API and workers) on the embedded, then the distributed backends."""
    process = serve_on(request, tmp_path)
    yield process
    process.terminate()


def _start(process: JobpulseProcess) -> JobpulseProcess:
    """Start ``process`` and wait for it longer than ``start`` does (moto creates queues slowly, and
    the machine may be busy)."""
    process.port, port = None, process.port
    process.start()
    process.port = port
    process.wait_ready(timeout=STARTUP_SECONDS)
    return process


def node(script: str, server: JobpulseProcess, tmp_path: Path, token: str = ALICE) -> list[dict[str, object]]:
    """Run ``tests/js/<script>`` with node against ``server``; its stdout's JSON lines."""
    env = {
        **os.environ,
        "JOBPULSE_URL": server.url,
        "JOBPULSE_TOKEN": token,
        "HOLD_UNTIL": str(tmp_path / "release"),
        "HOLD_JOURNAL": str(tmp_path / "journal"),
    }
    done = subprocess.run(
        ["node", script], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, (
        f"node {script} failed:\n{done.stderr}\n--- server log ---\n{server.output()[-3000:]}"
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
