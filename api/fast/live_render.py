"""Subscription events rendered without graphql-core's executor when the selection allows it.

graphql-core executes a subscription's selection set once per event per subscriber: a resolve
info, a path and a field lookup per field, and garbage that makes every cyclic-GC pass over
thousands of live subscriptions longer. Most live selections are a handful of plain fields
(``jobUpdated { id status progress }``), which is a dict built from attributes.

``SubscriptionExecutor`` compiles a subscription's selection once, the first time an event
comes, with graphql-core's own ``collect_fields`` (so aliases, fragments, ``@skip``/``@include``
and field merging are graphql-core's), into a ``Plan``: per response key, the attribute to read
and the type's own ``coerce_output_value``. Only selections where that is all graphql-core would
do compile: every field a Strawberry field without resolver, arguments or field extensions (or
``__typename``), of object types without ``is_type_of``, no resolving schema extension, no
``@defer``; a resolver field joins them if it declares its value from the source alone
(``api.fields.LIVE_VALUE``, e.g. ``result`` when it is not a blob reference: an event where it
cannot answer goes to graphql-core). Anything else (``payload``, ``logs(last:)``, …) returns
``None`` and the subscription keeps graphql-core's executor. An event the plan cannot render
exactly as graphql-core would (a null in a non-null field, a value its type refuses) is executed
by graphql-core, which reports the error as it always did.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, cast

from graphql import (
    ExecutionResult,
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
)
from graphql.execution.collect_fields import FieldDetailsList, collect_fields, collect_subfields
from graphql.execution.executor import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from api.fields import LIVE_VALUE

__all__ = ["Plan", "SubscriptionExecutor", "compile_plan", "shared_plan"]

_DEFINITION = "strawberry-definition"
_TYPENAME = "__typename"


class _Unrenderable(Exception):
    """This event needs graphql-core (it reports the error)."""


Coerce = Callable[[Any], Any]
#: response key, attribute to read (``None``: ``__typename``; a function: a resolver field's
#: ``LIVE_VALUE``), leaf coercion, non-null, sub-plan
Entry = tuple[str, str | Callable[[Any], Any] | None, Coerce | None, bool, "Plan | None"]


class Plan:
    """How to render an object type's selection: ``(key, attribute, coerce, non_null, sub-plan)``."""

    __slots__ = ("fields", "type_name")

    def __init__(self, type_name: str, fields: list[Entry]) -> None:
        self.type_name = type_name
        self.fields = tuple(fields)

    def render(self, source: object) -> dict[str, Any]:
        """The selection's data for ``source``; raises where graphql-core must decide (and report)."""
        out: dict[str, Any] = {}
        for key, attribute, coerce, non_null, sub in self.fields:
            if attribute is None:
                out[key] = self.type_name
                continue
            value = getattr(source, attribute) if type(attribute) is str else attribute(source)  # type: ignore[operator]
            if value is None:
                if non_null:
                    raise _Unrenderable
                out[key] = None
            elif isinstance(value, Exception):
                raise _Unrenderable
            elif sub is not None:
                out[key] = sub.render(value)
            else:
                assert coerce is not None
                coerced = coerce(value)  # a value the type refuses raises: graphql-core reports it
                if coerced is None:
                    raise _Unrenderable  # graphql-core: "expected … to return non-nullable value"
                out[key] = coerced
        return out


#: bounded: every schema built (tests build many) has its own enum types
_ENUM_COERCERS: dict[GraphQLEnumType, Coerce] = {}
_ENUM_COERCERS_MAX = 64


def _enum_coercer(enum_type: GraphQLEnumType) -> Coerce:
    """The type's ``coerce_output_value``, remembered per member of its Python enum.

    Strawberry's enum coercion walks every value of the enum per call; members are singletons,
    so the name found once is the name every time. Other values go to the type each time.
    """
    coercer = _ENUM_COERCERS.get(enum_type)
    if coercer is not None:
        return coercer
    wrapped = getattr(enum_type, "wrapped_cls", None)
    names: dict[Enum, Any] = {}
    coerce_output_value = enum_type.coerce_output_value

    def coerce(value: Any) -> Any:
        if type(value) is wrapped:
            name = names.get(value)
            if name is None:
                name = names[value] = coerce_output_value(value)
            return name
        return coerce_output_value(value)

    if len(_ENUM_COERCERS) >= _ENUM_COERCERS_MAX:
        _ENUM_COERCERS.clear()
    _ENUM_COERCERS[enum_type] = coerce
    return coerce


def _plain_attribute(field: Any) -> str | Callable[[Any], Any] | None:
    """The attribute a GraphQL field reads if it is a plain Strawberry field (or its ``LIVE_VALUE``
    if it is a resolver field that declares one), else ``None``."""
    definition = field.extensions.get(_DEFINITION) if field.extensions else None
    if not isinstance(definition, StrawberryField) or field.args or definition.extensions:
        return None
    now = definition.metadata.get(LIVE_VALUE) if definition.metadata else None
    if callable(now) and definition.base_resolver is not None:
        return cast(Callable[[Any], Any], now)
    if not getattr(field.resolve, "_is_default", False) or definition.base_resolver is not None:
        return None
    if definition.default_resolver is not getattr:
        return None
    return definition.python_name


def _compile_object(
    executor: Executor[Any], object_type: GraphQLObjectType, details: FieldDetailsList
) -> Plan | None:
    if object_type.is_type_of is not None:
        return None
    collected = collect_subfields(
        executor.schema,
        executor.fragments,
        executor.variable_values,
        executor.operation,
        object_type,
        details,
        executor.hide_suggestions,
    )
    if collected.new_defer_usages or collected.forbidden_directive_instances:
        return None
    fields: list[Entry] = []
    for key, field_details in collected.grouped_field_set.items():
        if any(d.defer_usage is not None or d.fragment_variable_values is not None for d in field_details):
            return None
        node = field_details[0].node
        name = node.name.value
        if name == _TYPENAME:
            if node.arguments:
                return None
            fields.append((key, None, None, True, None))
            continue
        field = object_type.fields.get(name)
        if field is None or node.arguments:
            return None
        attribute = _plain_attribute(field)
        if attribute is None:
            return None
        field_type = field.type
        non_null = isinstance(field_type, GraphQLNonNull)
        if non_null:
            field_type = field_type.of_type
        if isinstance(field_type, GraphQLObjectType):
            sub = _compile_object(executor, field_type, field_details)
            if sub is None:
                return None
            fields.append((key, attribute, None, non_null, sub))
        elif isinstance(field_type, GraphQLEnumType):
            fields.append((key, attribute, _enum_coercer(field_type), non_null, None))
        elif isinstance(field_type, GraphQLScalarType):
            fields.append((key, attribute, field_type.coerce_output_value, non_null, None))
        else:
            return None  # lists, interfaces, unions
    return Plan(object_type.name, fields)


def compile_plan(executor: Executor[Any]) -> tuple[str, Plan] | None:
    """``(root key, plan)`` for a subscription whose selection renders without graphql-core."""
    schema: GraphQLSchema = executor.schema
    root_type = schema.subscription_type
    manager = executor.middleware_manager
    if root_type is None or (manager is not None and manager.middlewares):
        return None
    collected = collect_fields(
        schema,
        executor.fragments,
        executor.variable_values,
        root_type,
        executor.operation,
        executor.hide_suggestions,
    )
    if len(collected.grouped_field_set) != 1 or collected.new_defer_usages:
        return None
    ((key, details),) = collected.grouped_field_set.items()
    if any(d.defer_usage is not None or d.fragment_variable_values is not None for d in details):
        return None
    field = root_type.fields.get(details[0].node.name.value)
    definition = field.extensions.get(_DEFINITION) if field is not None and field.extensions else None
    if field is None or not isinstance(definition, StrawberryField) or not definition.is_subscription:
        return None
    if definition.extensions:
        return None
    field_type = field.type
    if isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    if not isinstance(field_type, GraphQLObjectType):
        return None
    plan = _compile_object(executor, field_type, details)
    return None if plan is None else (key, plan)


class _RenderedEvent:
    """Stands in for graphql-core's per-event executor: its result is already rendered."""

    __slots__ = ("result",)

    def __init__(self, result: ExecutionResult) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> ExecutionResult:
        return self.result


_NOT_COMPILED: Any = object()

#: plans of documents without directives, shared by every subscription of the same parsed document
#: (strawberry's parser cache hands out one ``DocumentNode`` per query text): (schema, operation,
#: middlewares?) by their ids → (schema, operation, plan), the objects kept so an id is never reused
_SHARED_PLANS: dict[tuple[int, int, bool], tuple[object, object, tuple[str, Plan] | None]] = {}
_SHARED_PLANS_MAX = 256


def shared_plan(executor: Executor[Any]) -> tuple[str, Plan] | None:
    """``compile_plan(executor)``, compiled once per document when no variable can change it.

    Only ``@skip``/``@include`` make a plan depend on the variables: a document that contains no
    ``@`` at all (checked on its source text, so a string argument holding one just opts out)
    compiles to the same plan for every subscription.
    """
    manager = executor.middleware_manager
    operation = executor.operation
    key = (id(executor.schema), id(operation), bool(manager is not None and manager.middlewares))
    hit = _SHARED_PLANS.get(key)
    if hit is not None and hit[0] is executor.schema and hit[1] is operation:
        return hit[2]
    plan = compile_plan(executor)
    loc = operation.loc
    if loc is not None and "@" not in loc.source.body:
        if len(_SHARED_PLANS) >= _SHARED_PLANS_MAX:
            _SHARED_PLANS.clear()
        _SHARED_PLANS[key] = (executor.schema, operation, plan)
    return plan


class SubscriptionExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor; subscription events whose selection compiles skip graphql-core.

    ``map_source_to_response_event`` calls ``build_per_event_executor(payload)`` then
    ``execute_operation`` on what it returns (graphql-core's ``execute_subscription_event``);
    a compiled event returns its result from there. Queries and mutations are untouched.
    """

    _plan: tuple[str, Plan] | None = _NOT_COMPILED

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        plan = self._plan
        if plan is _NOT_COMPILED:
            try:
                plan = self._plan = shared_plan(self)
            except Exception:  # anything unexpected: graphql-core decides, as before
                plan = self._plan = None
        if plan is not None and payload is not None and not isinstance(payload, Exception):
            key, root = plan
            try:
                data = {key: root.render(payload)}
            except Exception:  # graphql-core executes this event and reports the error
                pass
            else:
                return cast(Executor[Any], _RenderedEvent(ExecutionResult(data, None)))
        return super().build_per_event_executor(payload)
