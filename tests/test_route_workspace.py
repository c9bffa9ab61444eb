"""Planner memory: search workspaces are kept only up to a cap; larger searches take a
shared slot and free their workspace before returning (issue 9)."""

from __future__ import annotations

import threading

import pytest

from skytwin.planner.route import Planner, PlannerBusyError, RouteRequest
from tests.grpc_fixtures import helsinki_twin

FROM, TO = (24.9403, 60.1715), (24.9524, 60.1676)


@pytest.fixture(scope="module")
def twin():
    return helsinki_twin()[0]


def test_small_workspace_is_kept_between_calls(twin):
    p = Planner(twin)
    p.plan(RouteRequest(FROM, TO, depart_s=0.0))
    kept = p.workspace_bytes()
    assert 0 < kept <= 16 * 4_500_000 + 64 * (1 << 20)
    p.plan(RouteRequest(FROM, TO, depart_s=0.0))
    assert p.workspace_bytes() == kept        # reused, not reallocated


def test_large_search_frees_its_workspace_and_slot(twin):
    slot = threading.BoundedSemaphore(1)
    p = Planner(twin, keep_workspace_voxels=1_000, large_search=slot)
    route = p.plan(RouteRequest(FROM, TO, depart_s=0.0))
    assert route.length_m > 0
    assert p.workspace_bytes() == 0           # nothing kept after the call
    assert slot.acquire(blocking=False)       # the slot was given back
    slot.release()


def test_large_search_waits_for_a_slot_then_refuses(twin):
    slot = threading.BoundedSemaphore(1)
    p = Planner(twin, keep_workspace_voxels=1_000, large_search=slot,
                large_search_wait_s=0.05)
    slot.acquire()                            # another large search is running
    try:
        with pytest.raises(PlannerBusyError, match="retry later"):
            p.plan(RouteRequest(FROM, TO, depart_s=0.0))
    finally:
        slot.release()
    assert p.workspace_bytes() == 0
