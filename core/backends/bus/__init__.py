"""Event buses: ``local.LocalEventBus`` (in-process) and ``redis.RedisEventBus`` (distributed),
both fanning out to subscriptions through ``fanout.Fanout``."""

__all__: list[str] = []
