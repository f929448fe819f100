"""Job stores: ``sqlite.SqliteJobStore`` (embedded) and ``mongo.MongoJobStore`` (distributed)."""

__all__: list[str] = []
