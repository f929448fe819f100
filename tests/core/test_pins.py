"""``core.pins.tested``: inside the tested ranges, outside them (one warning), not installed."""

from __future__ import annotations

import warnings

import pytest

from core.pins import TESTED, is_tested
from tests.api.fast.harness import fake_version


def test_the_installed_libraries_are_the_tested_ones() -> None:
    """The libraries installed for the tests are inside the ranges ``pyproject.toml`` pins."""
    assert is_tested(*TESTED)


def test_a_version_outside_the_range_is_refused_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """A version outside its range makes ``is_tested`` false, with one warning however often it is asked."""
    fake = fake_version(monkeypatch, "redis")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not is_tested("redis", "hiredis")
        assert not is_tested("redis")
    assert [str(w.message) for w in caught if fake in str(w.message)] == [str(caught[0].message)]
    assert caught[0].category is RuntimeWarning


def test_a_library_that_is_not_installed_is_not_tested(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing library counts as untested (its fast path is off)."""
    from importlib import metadata

    real = metadata.version

    def version(name: str) -> str:
        if name == "hiredis":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert not is_tested("hiredis")
