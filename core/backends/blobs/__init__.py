"""Blob stores for large payloads and results: ``files.FileBlobStore`` (beside SQLite) and
``s3.S3BlobStore``."""

__all__: list[str] = []
