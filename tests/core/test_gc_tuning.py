"""``tune_gc``: what the entry points do to the cyclic GC once the app is built."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.gc_tuning import GC_THRESHOLDS, tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tune_gc_freezes_start_up_objects_and_raises_thresholds(restore_gc: None) -> None:
    """After ``tune_gc`` the start-up objects are frozen and the thresholds are the tuned ones."""
    tune_gc()

    assert (gc.get_freeze_count() > 0, gc.get_threshold()) == (True, GC_THRESHOLDS)


def test_importing_the_entry_points_leaves_the_gc_alone() -> None:
    """Importing the CLI and the Lambda handler changes neither the thresholds nor the frozen set."""
    code = (
        "import gc; before = gc.get_threshold();"
        " import cli.main, workers.aws_lambda;"
        " print(gc.get_threshold() == before and gc.get_freeze_count() == 0)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert (out.returncode, out.stdout.strip()) == (0, "True"), out.stderr
