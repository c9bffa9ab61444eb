"""Deconfliction of planned routes over a real city: zero residual conflicts, and every
flight as it will fly still keeps its clearance (layer changes only go up)."""

from __future__ import annotations

import numpy as np
import pytest

from skytwin.airspace.io import load_city
from skytwin.airspace.twin import build_twin
from skytwin.fixtures.traffic import city_options, city_scenario
from skytwin.planner.conflicts import Separation, detect
from skytwin.planner.deconflict import SolveParams, deconflict, fcfs
from skytwin.planner.validate import RouteValidator

from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def helsinki_traffic():
    twin = build_twin(load_city(str(FIXTURES / "city" / "helsinki_centre.geojson")))
    flights = city_scenario(twin, 160, seed=5, duration_s=900.0)
    return twin, flights


def test_city_scenario_is_dense_and_real(helsinki_traffic):
    twin, flights = helsinki_traffic
    assert len(flights) >= 150
    validator = RouteValidator(twin.buildings, twin.clearance_m)
    assert all(validator.check(f.xyz_m, f.t_s).ok for f in flights)
    assert len(detect(flights, Separation())) > 0   # hubs make them meet


@pytest.fixture(scope="module")
def resolutions(helsinki_traffic):
    twin, flights = helsinki_traffic
    opts = city_options(twin)
    return {"cpsat": deconflict(flights, sep=Separation(), options=opts,
                                params=SolveParams(max_time_in_seconds=8.0, num_workers=2,
                                                   random_seed=1)),
            "fcfs": fcfs(flights, sep=Separation(), options=opts)}


@pytest.mark.parametrize("method", ["cpsat", "fcfs"])
def test_resolution_leaves_no_conflict_and_keeps_clearance(helsinki_traffic, resolutions,
                                                           method):
    twin, flights = helsinki_traffic
    sep = Separation()
    res = resolutions[method]
    placed = res.trajectories
    assert len(placed) + len(res.unplaced) == len(flights)
    assert all(res.unplaced[f] for f in res.unplaced)       # every refusal says why
    assert res.report is not None and res.report.ok
    assert detect(placed, sep) == []                         # a second, independent check
    validator = RouteValidator(twin.buildings, twin.clearance_m)
    for tr in placed:
        rep = validator.check(tr.xyz_m, tr.t_s)
        assert rep.ok, (tr.flight_id, str(rep))
        assert res.choices[tr.flight_id].delay_s <= tr.max_delay_s
    shifted = [f for f in res.choices.values() if f.layer_shift]
    assert all(c.layer_shift > 0 for c in shifted)


def test_cpsat_delay_not_worse_than_fcfs(resolutions):
    a, b = resolutions["cpsat"], resolutions["fcfs"]
    assert len(a.unplaced) <= len(b.unplaced)
    assert a.objective <= b.objective + 1e-6
    assert np.isfinite(a.objective)
