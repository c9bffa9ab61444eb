"""Tracks: the accepted reports of every flight, in memory and queued for the store.

Retention (documented contract):

* **In memory** (the live picture, replay of the last minutes): the newest
  ``capacity`` accepted reports of each flight (default 512: 8.5 minutes at 1 Hz) in a
  fixed numpy ring per flight, about 10 kB per flight (time float64; local position
  float32, i.e. within 1 mm up to 16 km from the twin's origin), so 5,000 airborne
  drones hold about 50 MB. A flight's ring is dropped ``keep_after_end_s``
  (default 300 s) after it ended.
* **Durably** (audit and replay): every accepted report is queued here and written by
  the server in batches (one transaction per batch, see ``server/store.py``); the queue
  is bounded (``max_pending``, default 200,000 rows); when the store falls that far
  behind, the oldest queued rows are dropped and counted in ``dropped`` (acknowledged
  state transitions are written separately and never dropped: only position history
  can be lost under overload, and the count says how much).
"""

from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["Tracks"]


class _Ring:
    __slots__ = ("n", "t", "xyz")

    def __init__(self, cap: int):
        self.t = np.full(cap, np.nan)
        self.xyz = np.zeros((cap, 3), np.float32)
        self.n = 0

    def add(self, t, xyz):
        cap = self.t.shape[0]
        k = self.n % cap
        self.t[k] = t
        self.xyz[k] = xyz
        self.n += 1

    def arrays(self):
        cap = self.t.shape[0]
        if self.n <= cap:
            return self.t[:self.n].copy(), self.xyz[:self.n].astype(np.float64)
        k = self.n % cap
        idx = np.r_[k:cap, 0:k]
        return self.t[idx], self.xyz[idx].astype(np.float64)


class Tracks:
    """Per-flight rings plus a bounded queue of rows for durable persistence."""

    def __init__(self, capacity: int = 512, max_pending: int = 200_000,
                 keep_after_end_s: float = 300.0):
        self.capacity = int(capacity)
        self.max_pending = int(max_pending)
        self.keep_after_end_s = float(keep_after_end_s)
        self._rings: dict[str, _Ring] = {}
        self._ended: dict[str, float] = {}
        self._pending: deque = deque()
        self.dropped = 0
        self.total = 0

    def add(self, flight_ids, t_s, xyz_m, rows=None) -> None:
        """Append accepted reports; ``rows`` (one tuple per report) go to the queue."""
        for k, fid in enumerate(flight_ids):
            r = self._rings.get(fid)
            if r is None:
                r = self._rings[fid] = _Ring(self.capacity)
            r.add(t_s[k], xyz_m[k])
        self.total += len(flight_ids)
        if rows:
            self._pending.extend(rows)
            over = len(self._pending) - self.max_pending
            for _ in range(max(0, over)):
                self._pending.popleft()
                self.dropped += 1

    def track(self, flight_id: str):
        """``(t_s (n,), xyz_m (n, 3))`` of the retained reports, oldest first."""
        r = self._rings.get(flight_id)
        if r is None:
            return np.zeros(0), np.zeros((0, 3))
        return r.arrays()

    def velocity(self, flight_id: str):
        """Finite-difference velocity of the last two reports (None when < 2)."""
        r = self._rings.get(flight_id)
        if r is None or r.n < 2:
            return None
        cap = r.t.shape[0]
        a, b = (r.n - 2) % cap, (r.n - 1) % cap
        dt = r.t[b] - r.t[a]
        if not dt > 0:
            return None
        return (r.xyz[b].astype(np.float64) - r.xyz[a]) / dt

    def ended(self, flight_id: str, t_s: float) -> None:
        self._ended[flight_id] = t_s

    def prune(self, now_s: float) -> int:
        """Drop the rings of flights ended more than ``keep_after_end_s`` ago."""
        old = [f for f, t in self._ended.items() if now_s - t > self.keep_after_end_s]
        for f in old:
            self._rings.pop(f, None)
            del self._ended[f]
        return len(old)

    def drain(self, max_rows: int = 50_000) -> list:
        """Up to ``max_rows`` queued rows for the store (oldest first)."""
        out = []
        while self._pending and len(out) < max_rows:
            out.append(self._pending.popleft())
        return out

    def requeue(self, rows) -> None:
        """Put rows back at the head of the queue (the store write failed)."""
        self._pending.extendleft(reversed(rows))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def __len__(self) -> int:
        return len(self._rings)
