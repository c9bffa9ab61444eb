"""Space-time partitions of the booking critical section (issue 14, part 3).

Why
---
One booking lock for the whole airspace made every booking wait for every other one,
and a large batch (or one slow placement) froze them all. But two bookings can only
interact when the flights could come within the separation minima of each other: a
delivery in the north of the city in ten minutes cannot change where a delivery in
the south can go now. So a booking locks only the **partitions** its flight could
occupy, and bookings in disjoint partitions run their critical sections (place
against the accepted flights, final checks, reserve) at the same time.

Partitions
----------
A partition is a horizontal tile of :data:`TILE_M` metres by a time bucket of
:data:`BUCKET_S` seconds. A flight's keys (:func:`partition_keys`) are, for each
segment of its trajectory, the tiles that the segment meets once each tile is grown
by half the horizontal separation on every side (for a diagonal segment a corridor of
tiles, not its whole bounding box), times the buckets meeting the segment's time span
grown by the timing buffer and by the delay the placement may still add
(``max_delay_s``). A layer shift is not vertical only: :meth:`Trajectory.shifted
<planner.trajectory.Trajectory.shifted>` re-times the flight so that it climbs and
descends the extra height at its own vertical speeds (every waypoint after take-off
moves by ``dz / climb speed``, the landing by ``dz / descent speed`` more: 11.7 s for
+20 m at 4 and 3 m/s, more than the timing buffer), so each segment's time span
is first widened to hold its span under every layer option the placement may choose
(``layer_dz_m``; x and y do not change). Two flights that could conflict come within
the horizontal minimum of each other at one time, within their possible delays and
layers: at that time the midpoint of their two positions lies within half the
minimum of both segments, so the tile holding it, grown by that half, meets
both segments, and both flights hold its key for that time's bucket: they share a key.
Hence two bookings holding disjoint keys cannot take the same slot, which is all the
old single lock guaranteed. Locks are taken in sorted key order (no deadlock).

What stays exclusive: zone changes, derived-zone overrides and the live-operations
re-routes change what every booking checks against, so they take the
:class:`BookingGate` exclusively (the core's ``_book``), which waits for the bookings
in their critical sections and holds new ones back (writers first, so a zone change
is not starved). Bookings take the gate shared, then their partitions.

Worst wait of a booking: the bookings holding one of its partitions when it arrives,
each for one critical section (a single placement: 2-30 ms here; a batch chunk of
:data:`server.service.BATCH_CHUNK` placements: 0.1-0.5 s), at most one per booking
thread ahead of it (``serve --workers``), plus one zone change; a booking elsewhere in
space or time does not delay it at all. With PostgreSQL the same keys are session
advisory locks (:meth:`server.pgstore.PgStore.booking_lock`), so the rule holds across
instances.

The reservation index (:class:`~planner.deconflict.AcceptedIndex`) is then used by
several threads at once: :class:`LockedIndex` guards each of its operations with a
short lock, and :class:`IndexView` gives one placement other options (delays only)
without changing the shared index's.
"""

from __future__ import annotations

import contextlib
import math
import threading

import numpy as np

__all__ = ["BUCKET_S", "TILE_M", "BookingGate", "IndexView", "LockedIndex",
           "PartitionLocks", "partition_keys"]

TILE_M = 500.0
"""Horizontal size of a partition [m]: a delivery route of a few km meets a handful."""

BUCKET_S = 600.0
"""Time span of a partition [s]: a flight with its 600 s delay budget meets two or
three."""


def partition_keys(traj, horizontal_m: float, time_buffer_s: float,
                   max_delay_s: float | None = None, tile_m: float = TILE_M,
                   bucket_s: float = BUCKET_S, layer_dz_m=(0.0,)) -> tuple:
    """The sorted ``(tile_x, tile_y, bucket)`` keys ``traj`` could occupy.

    Parameters
    ----------
    traj : planner.trajectory.Trajectory
        ``xyz_m`` (n, 3) local frame [m], ``t_s`` (n,) [s].
    horizontal_m, time_buffer_s : float
        The separation minima (:class:`planner.conflicts.Separation`).
    max_delay_s : float, optional
        Delay the placement may still add (default: ``traj.max_delay_s``).
    layer_dz_m : sequence of float
        Cruise-layer changes [m] the placement may choose (the options'
        ``layer_shift * layer_spacing_m``): each segment's time span covers its
        span in ``traj.shifted(0, dz)`` for each, which is re-timed as well as raised
        (module docstring).

    Examples
    --------
    >>> from skytwin.planner.trajectory import Trajectory
    >>> a = Trajectory("a", [[0, 0, 0], [0, 0, 50], [900, 0, 50]], [0, 10, 100])
    >>> partition_keys(a, 30.0, 5.0, max_delay_s=0.0)
    ((-1, -1, -1), (-1, -1, 0), (-1, 0, -1), (-1, 0, 0), (0, -1, -1), (0, -1, 0), (0, 0, -1), (0, 0, 0), (1, -1, 0), (1, 0, 0))
    """
    xyz = np.asarray(traj.xyz_m, dtype=np.float64)
    t = np.asarray(traj.t_s, dtype=np.float64)
    delay = float(traj.max_delay_s if max_delay_s is None else max_delay_s)
    # each waypoint's time under every layer option (a shift keeps x and y)
    t_lo, t_hi = t, t
    for dz in {float(d) for d in layer_dz_m} - {0.0}:
        ts = np.asarray(traj.shifted(0.0, dz).t_s, dtype=np.float64)
        t_lo, t_hi = np.minimum(t_lo, ts), np.maximum(t_hi, ts)
    pad = 0.5 * float(horizontal_m) + 1e-6
    keys = set()
    n = max(1, len(xyz) - 1)
    # Python floats (the same doubles): the loop below runs once per segment of every
    # booking, and arithmetic on numpy scalars costs several times more
    xyz, t_lo, t_hi = xyz.tolist(), t_lo.tolist(), t_hi.tolist()
    for s in range(n):
        a, b = xyz[s], xyz[min(s + 1, len(xyz) - 1)]
        i0 = math.floor((min(a[0], b[0]) - pad) / tile_m)
        i1 = math.floor((max(a[0], b[0]) + pad) / tile_m)
        j0 = math.floor((min(a[1], b[1]) - pad) / tile_m)
        j1 = math.floor((max(a[1], b[1]) + pad) / tile_m)
        ta = t_lo[s] - time_buffer_s
        tb = t_hi[min(s + 1, len(t_hi) - 1)] + delay + time_buffer_s
        k0, k1 = math.floor(ta / bucket_s), math.floor(tb / bucket_s)
        for i in range(i0, i1 + 1):
            for j in range(j0, j1 + 1):
                if (i1 > i0 and j1 > j0) and not _segment_meets_box(
                        a[0], a[1], b[0], b[1], i * tile_m - pad, j * tile_m - pad,
                        (i + 1) * tile_m + pad, (j + 1) * tile_m + pad):
                    continue       # a tile of the box the segment passes far from
                for k in range(k0, k1 + 1):
                    keys.add((i, j, k))
    return tuple(sorted(keys))


def _segment_meets_box(ax, ay, bx, by, x0, y0, x1, y1) -> bool:
    """Whether the 2D segment ``(ax, ay)-(bx, by)`` meets the closed box
    ``[x0, x1] x [y0, y1]`` (Liang-Barsky clipping; a touch counts).

    Examples
    --------
    >>> _segment_meets_box(0, 0, 10, 10, 4, 6, 5, 7), _segment_meets_box(0, 0, 10, 10, 6, 0, 9, 3)
    (False, False)
    >>> _segment_meets_box(0, 0, 10, 10, 5, 0, 9, 5), _segment_meets_box(3, 3, 3, 3, 0, 0, 3, 3)
    (True, True)
    """
    u0, u1 = 0.0, 1.0
    dx, dy = bx - ax, by - ay
    for p, q in ((-dx, ax - x0), (dx, x1 - ax), (-dy, ay - y0), (dy, y1 - ay)):
        if p == 0.0:
            if q < 0.0:
                return False
            continue
        r = q / p
        if p < 0.0:
            u0 = max(u0, r)
        else:
            u1 = min(u1, r)
        if u0 > u1:
            return False
    return True


class PartitionLocks:
    """One lock per partition key, created on first use and dropped when unused."""

    def __init__(self):
        self._mutex = threading.Lock()
        self._locks: dict = {}     # key -> [lock, users]

    @contextlib.contextmanager
    def hold(self, keys):
        """Hold every lock of ``keys`` (taken in sorted order)."""
        keys = sorted(set(keys))
        entries = []
        with self._mutex:
            for k in keys:
                e = self._locks.get(k)
                if e is None:
                    e = self._locks[k] = [threading.Lock(), 0]
                e[1] += 1
                entries.append((k, e))
        taken = []
        try:
            for _, e in entries:
                e[0].acquire()
                taken.append(e)
            yield
        finally:
            for e in reversed(taken):
                e[0].release()
            with self._mutex:
                for k, e in entries:
                    e[1] -= 1
                    if e[1] == 0:
                        del self._locks[k]

    def __len__(self):
        return len(self._locks)


class BookingGate:
    """Bookings enter shared; zone changes and re-routes exclusive (writers first).

    ``with gate:`` is the exclusive mode (the service core's ``_book`` keeps its old
    meaning, "no booking is between its checks and its reservation"); it is
    reentrant for the thread holding it. ``gate.shared()`` is a booking's.
    """

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = None        # thread ident holding it exclusively
        self._depth = 0
        self._writers_waiting = 0

    @contextlib.contextmanager
    def shared(self):
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:        # inside an exclusive section: already safe
                nested = True
            else:
                nested = False
                while self._writer is not None or self._writers_waiting:
                    self._cond.wait()
                self._readers += 1
        try:
            yield
        finally:
            if not nested:
                with self._cond:
                    self._readers -= 1
                    if self._readers == 0:
                        self._cond.notify_all()

    def __enter__(self):
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
                return self
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = me
            self._depth = 1
        return self

    def __exit__(self, *exc):
        with self._cond:
            self._depth -= 1
            if self._depth == 0:
                self._writer = None
                self._cond.notify_all()
        return False


class LockedIndex:
    """An :class:`~planner.deconflict.AcceptedIndex` whose every operation holds a
    short lock (several booking threads use it at once)."""

    def __init__(self, index):
        self._index = index
        self._lock = threading.RLock()

    @property
    def options(self):
        return self._index.options

    @options.setter
    def options(self, value):
        self._index.options = value

    @property
    def sep(self):
        return self._index.sep

    def __len__(self):
        with self._lock:
            return len(self._index)

    def __contains__(self, flight_id):
        with self._lock:
            return flight_id in self._index

    def accept(self, trajectory) -> None:
        with self._lock:
            self._index.accept(trajectory)

    def cancel(self, flight_id) -> None:
        with self._lock:
            self._index.cancel(flight_id)

    def near(self, trajs, max_delay_s=None):
        with self._lock:
            return self._index.near(trajs, max_delay_s)

    def near_segments(self, trajs, max_delay_s=None):
        with self._lock:
            return self._index.near_segments(trajs, max_delay_s)

    @property
    def cell_m(self):
        return self._index.cell_m

    @property
    def trajectories(self):
        with self._lock:
            return self._index.trajectories


class IndexView:
    """The shared index with other placement options (for one :func:`place` call)."""

    def __init__(self, index, options):
        self._index = index
        self.options = options
        self.sep = index.sep

    def __contains__(self, flight_id):
        return flight_id in self._index

    def near(self, trajs, max_delay_s=None):
        return self._index.near(trajs, max_delay_s)

    def near_segments(self, trajs, max_delay_s=None):
        return self._index.near_segments(trajs, max_delay_s)

    @property
    def cell_m(self):
        return self._index.cell_m
