"""Shared test configuration: where the real data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
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
