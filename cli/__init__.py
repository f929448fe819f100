"""The ``jobpulse`` command: it wires settings, backends, the API and workers; it decides nothing."""

__all__: list[str] = []
