"""``load_registry``: built-in job types plus configured modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigurationError
from core.settings import Settings
from workers.registry import load_registry


def test_builtins_are_always_registered(tmp_path: Path) -> None:
    """Without job modules, the registry holds exactly the built-in types."""
    registry = load_registry(Settings(data_dir=tmp_path, job_modules=""))
    assert registry.names == ["data_analysis", "image_resize", "webhook"]


def test_extra_modules_add_their_types(tmp_path: Path) -> None:
    """Each module in ``job_modules`` adds the types of its ``JOB_TYPES`` list."""
    registry = load_registry(Settings(data_dir=tmp_path, job_modules="tests.support.jobtypes"))
    assert {"image_resize", "noop", "sleep", "flaky", "fail"} <= set(registry.names)


def test_module_with_a_single_job_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module may expose one ``JOB_TYPE`` instead of a list."""
    (tmp_path / "jp_single_type.py").write_text(
        "from tests.support.jobtypes import JOB_TYPES\nJOB_TYPE = JOB_TYPES[0]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry(Settings(data_dir=tmp_path, job_modules="jp_single_type"))
    assert "noop" in registry


def test_missing_module_is_a_clear_error(tmp_path: Path) -> None:
    """A module that cannot be found is a ``ConfigurationError`` naming it and the setting."""
    with pytest.raises(
        ConfigurationError, match=r"'no_such_jobs_module' \(JOBPULSE_JOB_MODULES\) was not found"
    ):
        load_registry(Settings(data_dir=tmp_path, job_modules="no_such_jobs_module"))


def test_module_without_job_types_is_a_clear_error(tmp_path: Path) -> None:
    """A module defining neither ``JOB_TYPES`` nor ``JOB_TYPE`` is refused with a message saying so."""
    with pytest.raises(ConfigurationError, match="must define JOB_TYPES"):
        load_registry(Settings(data_dir=tmp_path, job_modules="json"))


def test_duplicate_job_type_is_a_clear_error(tmp_path: Path) -> None:
    """A module registering a type name already taken is refused."""
    with pytest.raises(ConfigurationError, match="registered twice"):
        load_registry(Settings(data_dir=tmp_path, job_modules="workers.handlers.webhook"))
