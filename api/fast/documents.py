"""``CheckedDocuments``: queries strawberry has once fully checked run on graphql-core's ``execute``.

A query text that has once been parsed, passed the limits (tokens, depth, aliases) and validated
— i.e. reached execution on strawberry's full path — is remembered (bounded LRU) with its
document; later requests with the same text run graphql-core's ``execute`` on that document
directly, without the per-request extension objects. A miss, an operation name the document
lacks, or an operation type the request may not run all take the full path, so its errors and
refusals stay exactly as they are. Errors are logged and coded as on the full path.
Subscriptions and streams never take this path.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError, get_operation_ast
from graphql import execute as graphql_execute
from graphql.execution.middleware import MiddlewareManager
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.await_maybe import await_maybe

from api.errors import coded_errors
from api.limits import QUERY_CACHE_SIZE

__all__ = ["CheckedDocuments"]

#: the operation types this path runs; subscriptions keep strawberry's own path
_FAST_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


class CheckedDocuments(strawberry.Schema):
    """A schema mixin: remembers fully checked documents and runs them without the full path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._checked_documents: OrderedDict[str, DocumentNode] = OrderedDict()
        self._resolving_extensions = any(
            _implements_resolve(extension) for extension in self.get_extensions()
        )

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        document = self.checked_document(query) if query else None
        if document is not None and allowed_operation_types is not None:
            operation = get_operation_ast(document, operation_name)
            if operation is not None:
                kind = OperationType(operation.operation.value)
                if kind in _FAST_OPERATIONS and kind in allowed_operation_types:
                    return await self.execute_checked(
                        document,
                        variable_values,
                        context_value,
                        root_value,
                        operation_name,
                        operation_extensions,
                    )
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )

    def checked_document(self, query: str) -> DocumentNode | None:
        """The document of ``query`` if it has passed the limits and validation (and is kept)."""
        document = self._checked_documents.get(query)
        if document is not None:
            self._checked_documents.move_to_end(query)
        return document

    async def execute_checked(
        self,
        document: DocumentNode,
        variable_values: dict[str, Any] | None,
        context_value: Any | None,
        root_value: Any | None,
        operation_name: str | None,
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult:
        """Run a ``checked_document`` with graphql-core directly; errors coded as on the full path."""
        try:
            result = await await_maybe(
                graphql_execute(
                    self._schema,
                    document,
                    root_value=root_value,
                    context_value=context_value,
                    variable_values=variable_values,
                    operation_name=operation_name,
                    executor_class=self.execution_context_class,
                    is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                    operation_extensions=operation_extensions,
                )
            )
        except Exception as exc:  # as strawberry's full path: an error result
            errors = [exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)]
            self._process_errors(errors)
            return ExecutionResult(data=None, errors=coded_errors(errors), extensions={})
        if not result.errors:
            return ExecutionResult(data=result.data, errors=None, extensions={})
        self._process_errors(result.errors)
        return ExecutionResult(data=result.data, errors=coded_errors(result.errors), extensions={})

    async def _execute_operation(
        self,
        execution_context: ExecutionContext,
        extensions_runner: Any,
        middleware_manager: MiddlewareManager,
        execute_function: Callable[..., Any],
        custom_context_kwargs: dict[str, Any],
    ) -> Any:
        # Reached only once the document parsed, passed the limits and validated without errors.
        query, document = execution_context.query, execution_context.graphql_document
        if query and document is not None and not self._resolving_extensions:
            cache = self._checked_documents
            cache[query] = document
            cache.move_to_end(query)
            while len(cache) > QUERY_CACHE_SIZE:
                cache.popitem(last=False)
        return await super()._execute_operation(
            execution_context, extensions_runner, middleware_manager, execute_function, custom_context_kwargs
        )


def _implements_resolve(extension: SchemaExtension) -> bool:
    return extension._implements_resolve()
