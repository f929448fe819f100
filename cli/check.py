"""``jobpulse check``: the configuration and every backend it names, one line each; exit 0 only
when all is well (what a container's start-up probe or an operator runs first)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from cli.startup import data_dir_uses, token_problems
from core.backends.probe import Probe, directory_problem, probe_backends
from core.errors import ConfigurationError
from core.settings import Settings

__all__ = ["Check", "render", "run_checks"]


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    probe: Probe | None = None


def _tokens(settings: Settings) -> list[Check]:
    from api.auth import ADMIN_TOKEN_FILE, parse_api_keys

    problems = token_problems(settings)
    if problems:
        return [Check("tokens", False, f"{problem}; {remedy}") for problem, remedy in problems]
    parts = []
    if settings.api_keys:
        roles = [principal.role for principal in parse_api_keys(settings.api_keys).values()]
        by_role = ", ".join(f"{roles.count(role)} {role}" for role in sorted(set(roles)))
        parts.append(f"{len(roles)} API keys ({by_role})")
    if settings.jwt_secret:
        parts.append("JWTs signed with JOBPULSE_JWT_SECRET")
    if not parts:
        path = settings.data_dir / ADMIN_TOKEN_FILE
        kept = "kept in" if path.exists() else "generated on first start into"
        parts.append(f"no keys: an admin token is {kept} {path.absolute()}")
    return [Check("tokens", True, "; ".join(parts))]


def _job_types(settings: Settings) -> tuple[Check, list[str]]:
    from workers.registry import load_registry

    try:
        registry = load_registry(settings)
    except ConfigurationError as exc:
        return Check("job types", False, f"{exc}; fix JOBPULSE_JOB_MODULES or JOBPULSE_EXTERNAL_TYPES"), []
    queued = [t.name for t in registry if not t.external]
    return Check("job types", True, ", ".join(registry.names)), queued


def _rate_limit(settings: Settings) -> list[Check]:
    """The submit rate limit, when one is set (a malformed one never gets here: the settings refuse it)."""
    from core.submit_rate import SubmitRateLimit

    limit = SubmitRateLimit.from_settings(settings)
    return [] if limit is None else [Check("rate limit", True, limit.describe())]


def _data_dir(settings: Settings) -> Check:
    uses = data_dir_uses(settings)
    where = str(settings.data_dir.absolute())
    if not uses:
        return Check("data dir", True, f"{where} (not used with these settings)")
    problem = directory_problem(settings.data_dir)
    if problem is not None:
        return Check("data dir", False, f"{problem}; set JOBPULSE_DATA_DIR to a writable directory")
    state = "writable" if settings.data_dir.exists() else "created on first start"
    return Check("data dir", True, f"{where} ({state}; holds {', '.join(uses)})")


def _backend(probe: Probe) -> Check:
    kind = f"{probe.kind} {probe.version}" if probe.version else probe.kind
    where = f" at {probe.where}" if probe.where else ""
    label = f"{kind}{where}" + (f" ({probe.variable})" if probe.variable else "")
    if not probe.ok:
        verb = "not reachable" if probe.unreachable else "refused"
        return Check(probe.role, False, f"{label}: {verb}: {probe.error}", probe)
    facts = ([f"{probe.rtt_ms:.1f} ms round trip"] if probe.rtt_ms is not None else []) + list(probe.notes)
    return Check(probe.role, True, f"{label}: {'; '.join(facts)}" if facts else label, probe)


def run_checks(settings: Settings, *, timeout: float = 5.0) -> list[Check]:
    """Every check, in the order of the report."""
    types_check, types = _job_types(settings)
    checks = [*_tokens(settings), types_check, *_rate_limit(settings), _data_dir(settings)]
    probes = asyncio.run(probe_backends(settings, types, seconds=timeout))
    return checks + [_backend(probe) for probe in probes]


def render(checks: list[Check], *, as_json: bool = False) -> str:
    """The report: aligned lines and a verdict, or one JSON document."""
    if as_json:
        document: dict[str, Any] = {
            "ok": all(check.ok for check in checks),
            "checks": [
                {
                    "name": check.name,
                    "ok": check.ok,
                    "detail": check.detail,
                    **({"backend": dataclasses.asdict(check.probe)} if check.probe else {}),
                }
                for check in checks
            ],
        }
        return json.dumps(document, indent=2)
    lines = [f"  {'ok' if check.ok else 'FAIL':<5} {check.name:<10} {check.detail}" for check in checks]
    failures = sum(not check.ok for check in checks)
    lines.append("all well" if not failures else f"{failures} problem{'s' if failures > 1 else ''}")
    return "\n".join(lines)
