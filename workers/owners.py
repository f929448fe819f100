"""Embedded mode: a worker's claims die with its process, and the next process knows at once.

A lease says how long a claim holds if nobody hears from its worker; on the embedded backends
every worker runs on this machine, so there is a surer sign. Each worker holds an exclusive
``flock`` on ``<data_dir>/owners/<worker id>`` while it runs; the kernel drops it when the process
ends, however it ends (``kill -9`` included). A worker starting up looks at the owners of the
PROCESSING jobs: one whose file it can lock is dead, and its jobs go back to the queue at once
(the attempt counted, as when a lease runs out) instead of waiting out the lease. Owners without a
file (external processors, a worker on another store) keep their leases.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from core.models import JobStatus
from core.ports import JobFilter
from core.service import JobService

__all__ = ["hold_owner_lock", "release_dead_owners"]

log = structlog.get_logger("jobpulse.owners")

MAX_RUNNING = 100_000  # PROCESSING jobs read at start-up (bounded by the workers' concurrency)


def _owners_dir(service: JobService) -> Path:
    return service.settings.data_dir / "owners"


def _lock_name(owner: str) -> str:
    return owner.replace("/", "_")


def embedded(service: JobService) -> bool:
    """Whether the store is the data directory's SQLite file (only then are all workers local)."""
    return service.settings.mongodb_url is None


@contextmanager
def hold_owner_lock(service: JobService, owner: str) -> Iterator[None]:
    """Hold ``owner``'s lock while the block runs (embedded mode only; elsewhere a no-op)."""
    if not embedded(service):
        yield
        return
    directory = _owners_dir(service)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / _lock_name(owner)
    # Locked before it has its name: nobody can take a live worker's fresh file for a dead one's.
    staging = directory / f".{_lock_name(owner)}.{os.getpid()}"
    fd = os.open(staging, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(staging, path)
        yield
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _dead(path: Path) -> bool:
    """Whether nobody holds ``path``'s lock (its process ended). False if the file is gone."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    os.close(fd)  # closing drops the lock
    return True


async def release_dead_owners(service: JobService) -> int:
    """Give back every PROCESSING job whose owner's process is gone; return how many were."""
    if not embedded(service):
        return 0
    directory = _owners_dir(service)
    processing = JobFilter(statuses=frozenset({JobStatus.PROCESSING}))
    running = await service.store.list_jobs(processing, MAX_RUNNING, None)
    owners = {job.lease_owner for job in running if job.lease_owner}
    dead = {owner for owner in owners if _dead(directory / _lock_name(owner))}
    released = 0
    for job in running:
        if job.lease_owner in dead and await service.release_dead_owner(job.id, job.lease_owner) is not None:
            released += 1
    for owner in dead:
        (directory / _lock_name(owner)).unlink(missing_ok=True)
    if released:
        log.warning("jobs of dead workers given back", count=released, owners=sorted(dead))
    return released
