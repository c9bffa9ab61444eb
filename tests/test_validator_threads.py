"""A RouteValidator shared between threads never queries its R-tree from two at once.

libspatialindex (the ``rtree`` package) is not safe even for concurrent *queries* on one
index: two threads in ``Index.intersection_v`` at once return wrong ids, raise numpy
errors or segfault (one load-test SubmitFlight failed with "operands could not be
broadcast together with shapes (10,) (11,)" from ``RouteValidator._candidates``). The
service core's validator is shared by the bookings (under ``ServiceCore._validator_lock``)
and by the live hub's Resolver, which did not take that lock. The validator now
serialises its own R-tree queries, so every sharer is safe.

The R-tree is replaced by a probe that records whether two threads are inside a query at
once (it widens the window with a short sleep and serialises the real calls itself, so
the test cannot crash even on the old code).
"""

from __future__ import annotations

import threading
import time

import numpy as np
from shapely.geometry import box

from skytwin.planner.validate import RouteValidator


class _Bldg:
    def __init__(self, n, x, y):
        self.footprint = box(x, y, x + 8.0, y + 8.0)
        self.top_m = 20.0 + n % 7
        self.id = f"b{n}"


class _OverlapProbe:
    """Wraps an rtree index; ``overlaps`` counts queries entered while another ran."""

    def __init__(self, idx, hold_s=0.002):
        self._idx = idx
        self._real = threading.Lock()     # the real calls never overlap (no crash)
        self._count = threading.Lock()
        self.inside = 0
        self.overlaps = 0
        self.hold_s = hold_s

    def _run(self, fn, *args):
        with self._count:
            self.inside += 1
            if self.inside > 1:
                self.overlaps += 1
        try:
            time.sleep(self.hold_s)
            with self._real:
                out = fn(*args)
                return list(out) if not isinstance(out, tuple) else out
        finally:
            with self._count:
                self.inside -= 1

    def intersection_v(self, mins, maxs):
        return self._run(self._idx.intersection_v, mins, maxs)

    def intersection(self, coords, *a, **kw):
        return self._run(lambda c: self._idx.intersection(c, *a, **kw), coords)


def _validator():
    rng = np.random.default_rng(3)
    pts = rng.uniform(0.0, 400.0, size=(300, 2))
    return RouteValidator([_Bldg(n, x, y) for n, (x, y) in enumerate(pts)], 5.0)


def _route(rng):
    a, b = rng.uniform(0.0, 400.0, size=(2, 2)).round(2)
    return np.array([[a[0], a[1], 0.0], [a[0], a[1], 25.0], [b[0], b[1], 25.0],
                     [b[0], b[1], 0.0]])


def test_concurrent_checks_never_overlap_in_the_rtree():
    v = _validator()
    rng = np.random.default_rng(0)
    routes = [_route(rng) for _ in range(12)]
    expected = [v.check(r).problems for r in routes]     # serial answers
    probe = v.idx = _OverlapProbe(v.idx)
    got = {}
    errors = []
    start = threading.Barrier(4)

    def work(k):
        try:
            start.wait()
            got[k] = [v.check(r).problems for r in routes]
        except Exception as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    ths = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not errors
    assert probe.overlaps == 0, f"{probe.overlaps} R-tree queries overlapped another"
    assert all(got[k] == expected for k in range(4))


def test_live_resolver_and_booking_share_the_core_validator_safely():
    """The live hub hands the core's validator to its Resolver (server/live.py): a
    booking's check (under the core's lock) and a resolver's check (without it) at the
    same time must not overlap in the R-tree either."""
    from skytwin.live.resolve import Resolver

    v = _validator()
    rng = np.random.default_rng(1)
    routes = [_route(rng) for _ in range(10)]
    probe = v.idx = _OverlapProbe(v.idx)
    core_lock = threading.Lock()             # ServiceCore._validator_lock
    resolver = Resolver.__new__(Resolver)    # only its validator is exercised
    resolver.validator = v
    start = threading.Barrier(2)

    def booking():
        start.wait()
        for r in routes:
            with core_lock:
                v.check(r)

    def live():
        start.wait()
        for r in routes:
            resolver.validator.check(r)

    ths = [threading.Thread(target=booking), threading.Thread(target=live)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert probe.overlaps == 0, f"{probe.overlaps} R-tree queries overlapped another"
