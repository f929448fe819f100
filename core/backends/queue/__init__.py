"""Job queues: ``sqlite.SqliteJobQueue`` (embedded) and ``sqs.SqsJobQueue`` (distributed)."""

__all__: list[str] = []
