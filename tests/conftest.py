"""Shared test configuration: where the real data lives, and a summary of what it enabled.

The real city models and the Moving AI benchmark are not in the repository: the tests
read them from ``../shared/data/`` beside the checkout, or from the folder named by
``SKYTWIN_DATA``. Without them the real-data tests skip, and the run ends with one line
saying how many skipped and how to enable them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SKYTWIN_DATA") or ROOT.parent / "shared" / "data")
CITY_DATA = SHARED_DATA / "city"
VOXEL3D_DATA = SHARED_DATA / "voxel3d"
FIXTURES = ROOT / "fixtures"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def city_data() -> Path:
    return _need(CITY_DATA)


@pytest.fixture(scope="session")
def voxel3d_data() -> Path:
    return _need(VOXEL3D_DATA)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def real_data_skips(reports) -> int:
    """How many skipped test reports skipped for want of the shared real data."""
    return sum(1 for r in reports
               if str(SHARED_DATA) in _skip_reason(r) or "shared data" in _skip_reason(r))


def real_data_summary(n_skipped: int) -> str | None:
    """The one summary line (``None`` when no real-data test skipped)."""
    if not n_skipped:
        return None
    return (f"{n_skipped} real-data tests skipped: the real city models and benchmark maps "
            f"were not found at {SHARED_DATA}; put them there (../shared/data/ beside the "
            "checkout) or set SKYTWIN_DATA=/path/to/data to run them")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    line = real_data_summary(real_data_skips(terminalreporter.stats.get("skipped", [])))
    if line:
        terminalreporter.write_line(line, yellow=True)
