"""An accepted advisory never puts two accepted flights in loss of separation, nor a
flight into a zone created since it was issued (server/live.py LiveHub.answer and
_recheck, regressions).

F is booked; a zone over its route makes the live hub re-plan it (a detour: F lands
later). Before the operator answers, either another operator books G taking off from
F's landing pad as the *advisory* F comes down (G is clear of F's approved trajectory,
which is what the bookings are placed against), or a regulator creates zone Z2 over the
*detour* (clear of the approved trajectory, which is what the zone's affected list and
the hub's zone re-plan look at). Accepting the advisory used to swap it into the store
and the strategic index unchecked. The oracles are plain numpy sampling of the stored
trajectories (relative timing buffer 5 s), not planner.verify, and shapely on the zone's
circle (projected with pyproj from its WGS84 centre), not the validator or zone layer.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from pyproj import Transformer
from shapely.geometry import LineString, Point

from skytwin.airspace.zones import Altitude, Circle, Zone
from skytwin.live.errors import LiveInputError
from skytwin.planner.route import RouteRequest
from skytwin.server.live import LiveHub
from skytwin.server.service import Caller, ServiceCore
from skytwin.server.store import Store
from tests.grpc_fixtures import helsinki_twin
from tests.naive.conflicts import sampled_loss

S_LL, G_LL = (24.94030, 60.17150), (24.95240, 60.16760)
META = {"priority": 1.0, "max_delay_s": 0.0, "speeds": {}}
OPA, OPB = Caller("a", "operator", "op-a"), Caller("b", "operator", "op-b")
REG = Caller("r", "regulator", "")
TM35 = Transformer.from_crs("EPSG:4326", "EPSG:3067", always_xy=True)


def _loss(a, b):
    return sampled_loss(a, b, 30.0, 10.0, 5.0, dt_s=0.02, dtau_s=0.05)


@pytest.fixture
def hub(tmp_path):
    twin, ref = helsinki_twin()
    core = ServiceCore(twin, Store(tmp_path / "l.db"), twin_ref=ref)
    h = LiveHub(core, start=False, freeze_gc=False)
    yield h
    h.close()
    core.close()


def _zone_advisory(hub):
    core, twin = hub.core, hub.core.twin
    rec, _ = core.submit_flight(OPA, "rf", RouteRequest(S_LL, G_LL,
                                                        depart_s=time.time() + 120), META)
    mid = rec.trajectory.xyz_m[len(rec.trajectory.xyz_m) // 2]
    lon, lat = twin.frame.to_wgs84(float(mid[0]), float(mid[1]))
    core.create_zone(REG, Zone(id="Z1", lower=Altitude(0, "AGL"), upper=Altitude(300, "AGL"),
                               circle=Circle(float(lon), float(lat), 40.0)))
    advs, errors = hub.zone_added("Z1")
    assert advs and not errors
    adv = advs[0]
    assert adv.flight_id == rec.flight_id and adv.trajectory.t_s[-1] > rec.trajectory.t_s[-1] + 8
    return rec, adv


def _accepted(core):
    return [r for r in core.store.list_flights(limit=100) if r.status == "accepted"]


def test_an_advisory_in_conflict_with_a_flight_booked_since_is_not_accepted(hub):
    core, twin = hub.core, hub.core.twin
    rec, adv = _zone_advisory(hub)
    pad = rec.trajectory.xyz_m[-1]
    goal = twin.frame.to_wgs84(float(pad[0]) - 250.0, float(pad[1]) + 150.0)
    g, _ = core.submit_flight(OPB, "rg", RouteRequest(
        G_LL, (float(goal[0]), float(goal[1])),
        depart_s=float(adv.trajectory.t_s[-1]) - 3.0), META)
    assert _loss(adv.trajectory, g.trajectory)         # the scenario's premise
    with pytest.raises(LiveInputError, match="booked since"):
        hub.answer("op-a", adv.advisory_id, True)
    recs = _accepted(core)
    assert len(recs) == 2
    assert not _loss(recs[0].trajectory, recs[1].trajectory)
    idx = {t.flight_id: t for t in core.index.trajectories}
    assert np.array_equal(idx[rec.flight_id].t_s, rec.trajectory.t_s)   # still approved


def test_an_advisory_still_clear_is_accepted(hub):
    rec, adv = _zone_advisory(hub)
    hub.answer("op-a", adv.advisory_id, True)
    idx = {t.flight_id: t for t in hub.core.index.trajectories}
    assert np.array_equal(idx[rec.flight_id].t_s, adv.trajectory.t_s)
    stored = hub.core.store.get_flight(rec.flight_id)
    assert np.array_equal(stored.trajectory.t_s, adv.trajectory.t_s)


def _track_m(frame, xyz):
    lon, lat = frame.to_wgs84(xyz[:, 0], xyz[:, 1])
    return LineString([TM35.transform(a, b) for a, b in zip(lon, lat)])


def _disc_m(lon, lat, r):
    return Point(*TM35.transform(lon, lat)).buffer(r, quad_segs=64)


def test_an_advisory_through_a_zone_created_since_is_not_accepted(hub):
    core, twin = hub.core, hub.core.twin
    rec, adv = _zone_advisory(hub)
    approved = _track_m(twin.frame, rec.trajectory.xyz_m)
    detour = _track_m(twin.frame, adv.route_xyz_m)
    # Z2: a small disc on the detour, well clear of the approved track
    pick = None
    for s in np.linspace(0.0, 1.0, 201):
        p = detour.interpolate(s, normalized=True)
        if p.distance(approved) > 60.0:
            pick = p
            break
    assert pick is not None, "the detour never leaves the approved track by 60 m"
    wgs = Transformer.from_crs("EPSG:3067", "EPSG:4326", always_xy=True)
    zlon, zlat = wgs.transform(pick.x, pick.y)
    _, affected = core.create_zone(REG, Zone(id="Z2", lower=Altitude(0, "AGL"),
                                             upper=Altitude(300, "AGL"),
                                             circle=Circle(zlon, zlat, 20.0)))
    z2 = _disc_m(zlon, zlat, 20.0)
    assert rec.flight_id not in affected and not approved.intersects(z2)   # premise
    assert detour.intersects(z2.buffer(-1.0))                              # premise
    advs2, _ = hub.zone_added("Z2")      # the hub's zone job: F's plan is clear of Z2
    assert not advs2
    try:
        hub.answer("op-a", adv.advisory_id, True)
    except LiveInputError as exc:
        assert "zone" in str(exc)
    stored = core.store.get_flight(rec.flight_id)
    idx = {t.flight_id: t for t in core.index.trajectories}
    for tr in (stored.trajectory, idx[rec.flight_id]):
        track = _track_m(twin.frame, tr.xyz_m)
        assert not track.intersects(z2.buffer(-1.0)), \
            "accepted trajectory enters zone Z2, created after the advisory, unlisted"


def test_an_advisory_whose_commit_fails_keeps_both_routes_reserved(hub, monkeypatch):
    """The advisory's new route is written, but its COMMIT reports a disk error: the
    store may hold either route now, so both stay reserved (a later booking is placed
    clear of the detour too), and the error reaches the operator."""
    from skytwin.server.store import CommitUncertainError
    core = hub.core
    rec, adv = _zone_advisory(hub)
    real = core.store.replace_trajectory

    def landed_but_failed(*a, **k):
        real(*a, **k)
        raise CommitUncertainError("the commit failed (disk I/O error)")
    monkeypatch.setattr(core.store, "replace_trajectory", landed_but_failed)
    with pytest.raises(CommitUncertainError):
        hub.answer("op-a", adv.advisory_id, True)
    held = [t for t in core.index.trajectories
            if np.array_equal(t.t_s, adv.trajectory.t_s)
            and np.array_equal(t.xyz_m, adv.trajectory.xyz_m)]
    assert len(held) == 1
    assert any(np.array_equal(t.t_s, rec.trajectory.t_s) for t in core.index.trajectories)
    # a flight taking off from the detour's landing pad as it comes down is placed
    # clear of the detour (the stored route, read back), by the sampled oracle
    pad = adv.trajectory.xyz_m[-1]
    goal = core.twin.frame.to_wgs84(float(pad[0]) - 250.0, float(pad[1]) + 150.0)
    g, _ = core.submit_flight(OPB, "rg2", RouteRequest(
        G_LL, (float(goal[0]), float(goal[1])),
        depart_s=float(adv.trajectory.t_s[-1]) - 3.0), dict(META, max_delay_s=600.0))
    stored = core.store.get_flight(rec.flight_id).trajectory
    assert np.array_equal(stored.t_s, adv.trajectory.t_s)      # the write did land
    assert not _loss(stored, g.trajectory)
