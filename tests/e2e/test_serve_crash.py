"""``kill -9`` of ``jobpulse serve`` under load, again and again on one data directory: every job
the API answered for is kept and completes soon after the last restart, and none runs twice at once."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.process import JobpulseProcess, serve_embedded

ALICE = "crash-alice"
KEYS = f"{ALICE}=alice:user"
KILLS = 4
ANSWERED_PER_ROUND = 60
CLIENTS = 8
#: the issue's promise: every answered job COMPLETED this long after the last restart
COMPLETION_SECONDS = 60
SUBMIT = "mutation($input: SubmitJobInput!) { submitJob(input: $input) { ... on Job { id } } }"
STATUS = "query($id: ID!) { job(id: $id) { status } }"


class Load:
    """``CLIENTS`` threads submitting ``sleep`` jobs to one server until it goes away."""

    def __init__(self, server: JobpulseProcess, journals: Path, numbers: itertools.count[int]) -> None:
        self.server, self.journals, self.numbers = server, journals, numbers
        self.answered: dict[str, int] = {}  # job id -> journal number
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)]
        for thread in self.threads:
            thread.start()

    def _client(self) -> None:
        with httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {ALICE}"}) as http:
            while True:
                number = next(self.numbers)
                payload = {"seconds": 0.1, "journal": str(self.journals / str(number))}
                variables = {"input": {"type": "sleep", "payload": payload}}
                try:
                    response = http.post(
                        "/graphql", json={"query": SUBMIT, "variables": variables}, timeout=10
                    )
                except httpx.HTTPError:
                    return  # the server is gone: whatever was not answered is not promised
                job = response.json()["data"]["submitJob"]
                with self.lock:
                    self.answered[job["id"]] = number

    def enough(self) -> bool:
        with self.lock:
            return len(self.answered) >= ANSWERED_PER_ROUND

    def join(self) -> dict[str, int]:
        for thread in self.threads:
            thread.join(30)
        return dict(self.answered)


def wait(condition: object, what: str, seconds: float) -> None:
    """Poll ``condition()`` until true, or fail after ``seconds``: a deadline, not a fixed sleep."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds}s: {what}")
        time.sleep(0.05)


def overlapping_runs(lines: list[list[str]], killed: set[str]) -> list[str]:
    """What in one job's journal shows two runs at once: a start while a run of a live process is open."""
    problems, running = [], None
    for word, _attempt, pid in lines:
        if word == "start":
            if running is not None and running not in killed:
                problems.append(f"start by {pid} while {running} ran")
            running = pid
        elif running != pid:
            problems.append(f"done by {pid}, but {running} was the one running")
        else:
            running = None
    return problems


@pytest.mark.slow
def test_serve_killed_under_load_keeps_every_answered_job_and_runs_none_twice_at_once(tmp_path: Path) -> None:
    """Four kill -9s of serve under load on one data directory: every answered job completes, one run at a time."""
    data, journals = tmp_path / "data", tmp_path / "journals"
    journals.mkdir()
    numbers = itertools.count()
    answered: dict[str, int] = {}
    killed: set[str] = set()
    # A lease far beyond the deadline: only knowing the dead incarnation's claims can meet it.
    env = {"JOBPULSE_VISIBILITY_TIMEOUT": "300", "JOBPULSE_BACKOFF_BASE_SECONDS": "0.05"}
    for round in range(KILLS):
        server = serve_embedded(data, tmp_path / f"serve-{round}.log", KEYS, **env)
        load = Load(server, journals, numbers)
        # Given clients submitting, when serve is killed mid-stream,
        wait(load.enough, "answers before the kill", 60)
        assert server.proc is not None
        killed.add(str(server.proc.pid))
        server.kill()
        answered.update(load.join())
    # then after one more start every answered job reads back and completes,
    server = serve_embedded(data, tmp_path / "serve-last.log", KEYS, **env)
    try:
        left = set(answered)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ALICE}"}) as http:

            def all_completed() -> bool:
                for job_id in list(left):
                    body = http.post("/graphql", json={"query": STATUS, "variables": {"id": job_id}}).json()
                    job = body["data"]["job"]
                    assert job is not None, f"answered job {job_id} was lost"
                    if job["status"] == "COMPLETED":
                        left.discard(job_id)
                return not left

            wait(all_completed, "every answered job completed", COMPLETION_SECONDS)
    finally:
        server.terminate()
    # and no job ran twice at once.
    for number in answered.values():
        path = journals / str(number)
        lines = [line.split() for line in path.read_text().splitlines()]
        assert overlapping_runs(lines, killed) == [], (number, lines)
    assert len(answered) >= KILLS * ANSWERED_PER_ROUND
