"""job, jobs (paging and filters), jobTypes and stats over HTTP."""

from __future__ import annotations

from core.models import LogLevel, Principal
from tests.api.helpers import ADMIN, ALICE, BOB, JOB_FIELDS, Server

JOB = f"query($id: ID!) {{ job(id: $id) {{ {JOB_FIELDS} logs {{ at level message }} }} }}"

JOBS = """
query($filter: JobFilter, $first: Int, $after: String) {
  jobs(filter: $filter, first: $first, after: $after) {
    totalCount
    edges { cursor node { id type status owner } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""

STATS = """
{ stats {
    totalJobs averageProcessingTime failureRate queueDepth deadLetterDepth
    byStatus { pending processing completed failed cancelled }
    byType { type queueDepth deadLetterDepth byStatus { pending completed failed } }
} }"""


async def test_job_returns_the_callers_job(server: Server) -> None:
    """job(id) returns the job with its payload."""
    job_id = await server.submit(ALICE, "noop", {"note": "hello"})

    job = (await server.data(ALICE, JOB, id=job_id))["job"]

    assert (job["id"], job["status"], job["payload"], job["owner"]) == (
        job_id,
        "PENDING",
        {"note": "hello"},
        "alice",
    )


async def test_job_of_another_user_is_null_like_a_missing_one(server: Server) -> None:
    """job(id) of another user's job is null, exactly like an id that does not exist."""
    job_id = await server.submit(ALICE)

    assert await server.data(BOB, JOB, id=job_id) == {"job": None}
    assert await server.data(BOB, JOB, id="no-such-job") == {"job": None}
    assert (await server.data(ADMIN, JOB, id=job_id))["job"]["id"] == job_id


async def test_job_shows_progress_result_and_logs(server: Server) -> None:
    """A job's progress, result and log lines (oldest first, `last` newest) are visible."""
    job_id = await server.submit(ALICE, "sleep", {"seconds": 1})
    claim = await server.start(job_id)
    await server.service.log(claim, LogLevel.INFO, "first line")
    await server.service.progress(claim, 40, "forty")
    await server.service.log(claim, LogLevel.WARNING, "second line")
    await server.service.complete(claim, {"slept": 1})

    job = (await server.data(ALICE, JOB, id=job_id))["job"]
    newest = await server.data(
        ALICE, "query($id: ID!) { job(id: $id) { logs(last: 1) { message } } }", id=job_id
    )

    assert (job["status"], job["progress"], job["result"], job["attempts"]) == (
        "COMPLETED",
        100.0,
        {"slept": 1},
        1,
    )
    assert job["progressMessage"] == "forty"
    assert [(line["level"], line["message"]) for line in job["logs"]] == [
        ("INFO", "first line"),
        ("WARNING", "second line"),
    ]
    assert newest["job"]["logs"] == [{"message": "second line"}]


async def test_jobs_pages_newest_first(server: Server) -> None:
    """jobs pages newest first with Relay cursors, totalCount and hasNextPage."""
    ids = [await server.submit(ALICE, "noop", {"note": str(i)}) for i in range(5)]

    seen: list[str] = []
    after = None
    pages = []
    while True:
        page = (await server.data(ALICE, JOBS, first=2, after=after))["jobs"]
        pages.append(page)
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == list(reversed(ids))
    assert [len(p["edges"]) for p in pages] == [2, 2, 1]
    assert {p["totalCount"] for p in pages} == {5}
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]
    assert pages[0]["pageInfo"]["startCursor"] == pages[0]["edges"][0]["cursor"]


async def test_jobs_filters_by_status_and_type(server: Server) -> None:
    """jobs filters by status and by type, and totalCount counts what the filter matches."""
    noop = await server.submit(ALICE, "noop")
    await server.submit(ALICE, "sleep", {"seconds": 1})
    cancelled = await server.submit(ALICE, "noop")
    await server.service.cancel(Principal("alice"), cancelled)

    by_status = (await server.data(ALICE, JOBS, filter={"status": ["CANCELLED"]}))["jobs"]
    by_type = (await server.data(ALICE, JOBS, filter={"type": "noop"}))["jobs"]
    both = (await server.data(ALICE, JOBS, filter={"type": "noop", "status": ["PENDING"]}))["jobs"]

    assert [e["node"]["id"] for e in by_status["edges"]] == [cancelled]
    assert by_type["totalCount"] == 2
    assert [e["node"]["id"] for e in both["edges"]] == [noop]


async def test_jobs_filters_by_creation_time(server: Server) -> None:
    """createdAfter and createdBefore bound the listing by creation time."""
    first = await server.submit(ALICE)
    second = await server.submit(ALICE)
    pivot = (await server.stored(second)).created_at.isoformat()

    before = (await server.data(ALICE, JOBS, filter={"createdBefore": pivot}))["jobs"]
    after = (await server.data(ALICE, JOBS, filter={"createdAfter": pivot}))["jobs"]

    assert [e["node"]["id"] for e in before["edges"]] == [first]
    assert second not in [e["node"]["id"] for e in after["edges"]]


async def test_users_list_only_their_own_jobs_whatever_the_owner_filter(server: Server) -> None:
    """A user's listing holds only its own jobs, even when it asks for another owner."""
    mine = await server.submit(ALICE)
    await server.submit(BOB)

    plain = (await server.data(ALICE, JOBS))["jobs"]
    other = (await server.data(ALICE, JOBS, filter={"owner": "bob"}))["jobs"]

    assert [e["node"]["id"] for e in plain["edges"]] == [mine]
    assert [e["node"]["id"] for e in other["edges"]] == [mine]
    assert plain["totalCount"] == other["totalCount"] == 1


async def test_admins_list_everyone_and_may_filter_by_owner(server: Server) -> None:
    """An admin lists every owner's jobs and may narrow to one owner."""
    await server.submit(ALICE)
    bobs = await server.submit(BOB)

    everyone = (await server.data(ADMIN, JOBS))["jobs"]
    only_bob = (await server.data(ADMIN, JOBS, filter={"owner": "bob"}))["jobs"]

    assert everyone["totalCount"] == 2
    assert [e["node"]["id"] for e in only_bob["edges"]] == [bobs]


async def test_bad_cursor_and_page_size_are_validation_errors(server: Server) -> None:
    """A cursor this server did not issue, or a page size out of range, is an error coded VALIDATION."""
    bad_cursor = await server.graphql(ALICE, JOBS, after="not-a-cursor")
    too_many = await server.graphql(ALICE, JOBS, first=100_000)

    assert bad_cursor["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert too_many["errors"][0]["extensions"]["code"] == "VALIDATION"


async def test_job_types_lists_payload_schemas(server: Server) -> None:
    """jobTypes lists every registered type with its payload JSON Schema and defaults."""
    types = await server.data(
        ALICE, "{ jobTypes { name description payloadSchema maxAttempts timeoutSeconds } }"
    )

    sleep = next(t for t in types["jobTypes"] if t["name"] == "sleep")
    assert sleep["payloadSchema"]["properties"]["seconds"]["type"] == "number"
    assert (sleep["maxAttempts"], sleep["timeoutSeconds"]) == (3, 600)
    assert {"noop", "sleep", "flaky", "fail"} <= {t["name"] for t in types["jobTypes"]}


async def test_stats_are_forbidden_to_users(server: Server) -> None:
    """stats asked by a user is an error coded FORBIDDEN."""
    body = await server.graphql(ALICE, STATS)

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_stats_summarise_jobs_for_admins(server: Server) -> None:
    """stats counts by status and type, with failure rate, average run time and queue depth."""
    done = await server.submit(ALICE, "noop")
    failed = await server.submit(BOB, "fail")
    await server.submit(ALICE, "noop")
    await server.service.complete(await server.start(done), {"ok": True})
    await server.service.fail_attempt(await server.start(failed), "boom", retryable=False)

    stats = (await server.data(ADMIN, STATS))["stats"]

    assert stats["totalJobs"] == 3
    assert stats["byStatus"] == {"pending": 1, "processing": 0, "completed": 1, "failed": 1, "cancelled": 0}
    assert stats["failureRate"] == 50.0
    assert stats["averageProcessingTime"] is not None and stats["averageProcessingTime"] >= 0
    noop = next(t for t in stats["byType"] if t["type"] == "noop")
    assert noop["byStatus"] == {"pending": 1, "completed": 1, "failed": 0}
    assert stats["queueDepth"] == sum(t["queueDepth"] for t in stats["byType"]) >= 1


async def test_empty_stats_have_no_average_and_zero_failure_rate(server: Server) -> None:
    """With no finished jobs, averageProcessingTime is null and failureRate is 0."""
    stats = (await server.data(ADMIN, STATS))["stats"]

    assert (stats["totalJobs"], stats["averageProcessingTime"], stats["failureRate"]) == (0, None, 0.0)
