"""Limits on what one request may cost: body size, query tokens, depth and aliases.

Depth and aliases are counted with every fragment expanded, as execution would see them, but
each fragment is measured once (memoised): a document of fragments that spread each other
twice over cannot make the count itself take exponential time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from starlette.responses import JSONResponse
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)

from core.settings import Settings

__all__ = ["ReportingParserCache", "alias_rule", "body_refusal", "depth_rule", "limit_extensions"]

#: distinct query texts whose parse and validation results are kept
QUERY_CACHE_SIZE = 1024


def _fragments(context: ValidationContext) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)}


def _operations(context: ValidationContext) -> list[OperationDefinitionNode]:
    return [d for d in context.document.definitions if isinstance(d, OperationDefinitionNode)]


def depth_rule(max_depth: int) -> type[ValidationRule]:
    """A rule refusing operations nested deeper than ``max_depth`` fields (introspection excepted)."""

    class MaxDepthRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            fragments = _fragments(context)
            memo: dict[tuple[str, int], int] = {}

            def depth(selections: SelectionSetNode, level: int, visiting: frozenset[str]) -> int:
                """The depth reached below ``selections``, which sit at ``level``; stops past the limit."""
                deepest = level
                for node in selections.selections:
                    if deepest > max_depth:
                        break
                    if isinstance(node, FieldNode):
                        if node.name.value.startswith("__"):
                            continue  # introspection: bounded by the schema and the token limit
                        below = node.selection_set
                        reached = depth(below, level + 1, visiting) if below else level + 1
                    elif isinstance(node, InlineFragmentNode):
                        reached = depth(node.selection_set, level, visiting)
                    elif isinstance(node, FragmentSpreadNode):
                        name = node.name.value
                        if name in visiting or name not in fragments:
                            continue  # cycles and unknown fragments are reported by graphql's own rules
                        if (name, level) not in memo:
                            memo[name, level] = depth(fragments[name].selection_set, level, visiting | {name})
                        reached = memo[name, level]
                    else:
                        continue
                    deepest = max(deepest, reached)
                return deepest

            for operation in _operations(context):
                reached = depth(operation.selection_set, 0, frozenset())
                if reached > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    context.report_error(
                        GraphQLError(f"'{name}' exceeds maximum operation depth of {max_depth}", operation)
                    )

    return MaxDepthRule


def alias_rule(max_aliases: int) -> type[ValidationRule]:
    """A rule refusing documents using more than ``max_aliases`` aliases (fragments expanded)."""

    class MaxAliasesRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            fragments = _fragments(context)
            memo: dict[str, int] = {}
            cap = max_aliases + 1  # counts saturate here: past the limit, how far past does not matter

            def count(selections: SelectionSetNode, visiting: frozenset[str]) -> int:
                total = 0
                for node in selections.selections:
                    if total >= cap:
                        break
                    if isinstance(node, FieldNode):
                        total += 1 if node.alias else 0
                        if node.selection_set:
                            total += count(node.selection_set, visiting)
                    elif isinstance(node, InlineFragmentNode):
                        total += count(node.selection_set, visiting)
                    elif isinstance(node, FragmentSpreadNode):
                        name = node.name.value
                        if name in visiting or name not in fragments:
                            continue
                        if name not in memo:
                            memo[name] = count(fragments[name].selection_set, visiting | {name})
                        total += memo[name]
                return min(total, cap)

            total = sum(count(operation.selection_set, frozenset()) for operation in _operations(context))
            if total > max_aliases:
                message = f"more than {max_aliases} aliases; the limit is {max_aliases}"
                context.report_error(GraphQLError(message))

    return MaxAliasesRule


class ReportingParserCache(ParserCache):
    """``ParserCache`` that leaves a document it cannot parse to strawberry's own parse.

    ``ParserCache`` raises the syntax error from its hook, outside the ``try`` in which strawberry
    turns parse errors into a result: the error would skip the other extensions (and, over
    websockets, never reach the client). Only documents that fail are parsed twice.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield


def limit_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Schema extensions enforcing the settings' query limits, and caching parse and validation.

    The rule classes are made once: validation results are cached per (document, rules), so a
    class made per request would never hit the cache.
    """
    rules: list[type[ASTValidationRule]] = [
        depth_rule(settings.max_query_depth),
        alias_rule(settings.max_aliases),
    ]
    max_tokens = settings.max_query_tokens
    return [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: AddValidationRules(rules),
        lambda: ReportingParserCache(maxsize=QUERY_CACHE_SIZE),
        lambda: ValidationCache(maxsize=QUERY_CACHE_SIZE),
    ]


def body_refusal(status: int, message: str, path: str = "") -> JSONResponse:
    """The answer to a request body over the limit (413) or with an invalid length (400): GraphQL's
    shape, or the REST routes' (``{"error": ...}``) for a ``path`` under ``/api/``."""
    code = "PAYLOAD_TOO_LARGE" if status == 413 else "BAD_REQUEST"
    if path.startswith("/api/"):
        return JSONResponse({"error": {"code": code, "message": message, "field": None}}, status_code=status)
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status)
