"""Acknowledgements to SQS, coalesced: deletes that arrive while one is in flight go out together.

Like a group commit: the first delete for a queue goes out at once, and every delete requested
meanwhile waits for the next ``DeleteMessageBatch`` (up to ten at a time). No added latency when
idle, a tenth of the requests under load.
"""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.errors import BackendUnavailableError

__all__ = ["BatchDeleter", "is_gone"]

BATCH = 10  # SQS's limit per DeleteMessageBatch
#: error codes meaning "this receipt no longer names a message we hold"
GONE_CODES = frozenset(
    {
        "ReceiptHandleIsInvalid",
        "InvalidParameterValue",
        "MessageNotInflight",
        "AWS.SimpleQueueService.MessageNotInflight",
    }
)


def is_gone(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in GONE_CODES


class BatchDeleter:
    """``await delete(url, receipt_handle)``: returns once SQS confirmed (or the message is gone)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._pending: dict[str, list[tuple[str, asyncio.Future[None]]]] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}

    async def delete(self, url: str, receipt_handle: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(url, []).append((receipt_handle, future))
        if url not in self._flushers:
            self._flushers[url] = asyncio.create_task(self._flush(url))
        await future

    async def drain(self) -> None:
        """Wait for every delete requested so far."""
        while self._flushers:
            await asyncio.gather(*self._flushers.values(), return_exceptions=True)

    async def _flush(self, url: str) -> None:
        try:
            while pending := self._pending.get(url):
                batch, self._pending[url] = pending[:BATCH], pending[BATCH:]
                await self._send(url, batch)
        finally:
            del self._flushers[url]
            self._pending.pop(url, None)

    async def _send(self, url: str, batch: list[tuple[str, asyncio.Future[None]]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, (handle, _) in enumerate(batch)]
        try:
            response = await self._client.delete_message_batch(QueueUrl=url, Entries=entries)
        except (ClientError, BotoCoreError, OSError, TimeoutError) as exc:
            error = BackendUnavailableError(f"SQS DeleteMessageBatch failed: {exc}")
            error.__cause__ = exc
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        failed = {f["Id"]: f for f in response.get("Failed", [])}
        for i, (_, future) in enumerate(batch):
            if future.done():
                continue
            failure = failed.get(str(i))
            if failure is None or failure.get("Code") in GONE_CODES:
                future.set_result(None)  # deleted, or already gone: either way acknowledged
            else:
                future.set_exception(
                    BackendUnavailableError(
                        f"SQS could not delete a message: {failure.get('Code')}: {failure.get('Message')}"
                    )
                )
