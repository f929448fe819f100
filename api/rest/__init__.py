"""REST under ``/api/v1`` for clients without GraphQL (the seeds' shape), its OpenAPI document and docs."""

from api.rest.routes import PREFIX, rest_routes

__all__ = ["PREFIX", "rest_routes"]
