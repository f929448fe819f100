"""The GraphQL API: the Starlette app, the Strawberry schema, and authentication."""

from api.app import BackgroundTask, create_app
from api.auth import load_or_create_admin_token
from api.schema import build_schema

__all__ = ["BackgroundTask", "build_schema", "create_app", "load_or_create_admin_token"]
