"""What of the configuration may be shown: masked URLs and settings errors without secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.redact import mask_url, settings_problem
from core.settings import Settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mongodb://app:pw@db1:27017,db2:27017/jobs?replicaSet=rs0",
         "mongodb://app:***@db1:27017,db2:27017/jobs?replicaSet=rs0"),
        ("mongodb+srv://app:p%40ss@cluster0.example.net/", "mongodb+srv://app:***@cluster0.example.net/"),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://cache:6380/0?password=hunter2&ssl_cert_reqs=none",
         "rediss://cache:6380/0?password=***&ssl_cert_reqs=none"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("mongodb://app@db/", "mongodb://app@db/"),
        ("not a url", "not a url"),
    ],
)  # fmt: skip
def test_mask_url_hides_passwords_and_keeps_the_rest(url: str, shown: str) -> None:
    """A URL's password (in its user info or a password-like query value) is ``***``; the rest stays."""
    assert mask_url(url) == shown


def test_settings_problem_names_each_variable_with_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every refused setting is named by its variable, with its value and what it should be."""
    monkeypatch.setenv("JOBPULSE_PORT", "eighty")
    monkeypatch.setenv("JOBPULSE_WORKER_CONCURRENCY", "0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    line = settings_problem(caught.value)
    assert "JOBPULSE_PORT='eighty': should be a valid integer" in line
    assert "JOBPULSE_WORKER_CONCURRENCY='0': should be greater than or equal to 1" in line
    assert "\n" not in line


def test_settings_problem_masks_urls_in_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused value that is a URL is shown with its password masked."""
    with pytest.raises(ValidationError) as caught:
        Settings(alert_timeout_seconds="http://u:topsecret@x/")  # type: ignore[arg-type]
    line = settings_problem(caught.value)
    assert "topsecret" not in line
    assert "u:***@x" in line
