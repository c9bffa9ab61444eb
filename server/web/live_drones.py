"""Live drones for the web map: the live engine's newest report per airborne flight.

Why a sampled picture and not one event per report
--------------------------------------------------
Telemetry arrives at about 1 Hz per drone: 1,000 drones are 1,000 reports a second. A
page does not need each one; it needs the newest position and conformance state of
every drone in the air, soon after it changed. :class:`DroneFeed` therefore watches
the engine's count of accepted reports (``LiveOps.stats["accepted"]``, bumped by every
accepted batch) every ``period_s`` (default 0.25 s) and, only when it moved or a
flight changed state, builds **one** snapshot of all airborne drones (flat arrays, a
few kB) that every open map receives on its SSE stream, filtered to what the caller
may see (operators: their own flights). A page thus gets at most 4 updates a second,
each reflecting every report accepted before it; an idle engine costs one integer
comparison per period. State changes (activated, nonconforming, contingent, ended)
also reach the page at once as ``flight_state`` changes of the core's change feed.

Reading the engine: ``LiveOps.positions()`` only (copies taken under the engine's lock;
nothing here reads the engine's internals or writes to it).
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

__all__ = ["DroneFeed", "drones_for_caller", "snapshot"]

log = logging.getLogger(__name__)

_AIRBORNE = ("activated", "nonconforming", "contingent")


def snapshot(ops, frame) -> dict:
    """Every airborne drone with a report, as flat arrays for the page.

    Returns
    -------
    dict with ``flight_ids``, ``operator_ids``, ``states`` (lifecycle state: activated,
    nonconforming or contingent), ``t_s`` (time of the newest report, Unix s) and
    ``pos`` (flat ``[lon, lat, alt_amsl_m, ...]``, degrees rounded to 1e-7, metres to
    1 cm).
    """
    ids, owners, states, t, xyz = ops.positions()
    if len(ids):
        lon, lat = frame.to_wgs84(xyz[:, 0], xyz[:, 1])
        pos = np.column_stack([np.round(lon, 7), np.round(lat, 7),
                               np.round(xyz[:, 2], 2)]).ravel().tolist()
    else:
        pos = []
    return {"flight_ids": list(ids), "operator_ids": list(owners),
            "states": list(states), "t_s": np.round(t, 3).tolist(), "pos": pos}


def drones_for_caller(snap: dict, caller) -> dict:
    """``snap`` reduced to what ``caller`` may see (operators: their own flights)."""
    if caller.is_regulator:
        return snap
    keep = [k for k, op in enumerate(snap["operator_ids"]) if op == caller.operator_id]
    return {"flight_ids": [snap["flight_ids"][k] for k in keep],
            "operator_ids": [snap["operator_ids"][k] for k in keep],
            "states": [snap["states"][k] for k in keep],
            "t_s": [snap["t_s"][k] for k in keep],
            "pos": [v for k in keep for v in snap["pos"][3 * k:3 * k + 3]]}


class DroneFeed:
    """Samples the live engine and hands each new snapshot to the listeners.

    ``listeners`` are callables ``fn(snapshot)`` run on the event loop (the SSE
    streams put it on their queues). :meth:`run` is the asyncio task; the snapshot is
    built off the loop (``run_in_executor``).
    """

    def __init__(self, hub, frame, period_s: float = 0.25):
        self.hub, self.frame, self.period_s = hub, frame, float(period_s)
        self.listeners: set = set()
        self.latest: dict | None = None
        self._seen = None

    def _key(self):
        ops = self.hub.ops
        c = ops.counts()["flights"]   # states per count: a state change moves it
        return (ops.stats.get("accepted", 0),
                tuple(sorted((k, v) for k, v in c.items() if k in _AIRBORNE)))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.period_s)
            if not self.listeners:
                continue
            try:
                key = self._key()
                if key == self._seen:
                    continue
                self._seen = key
                snap = await loop.run_in_executor(None, snapshot, self.hub.ops,
                                                  self.frame)
            except Exception:  # noqa: BLE001 - the map must keep its stream
                log.exception("web: live drone snapshot failed")
                continue
            self.latest = snap
            for fn in list(self.listeners):
                fn(snap)
