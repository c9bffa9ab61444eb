"""Conformance: the exact 4D tube against a dense sampling oracle, and the timers."""

from __future__ import annotations

import numpy as np
import pytest

from skytwin.live.conformance import ConformanceParams, Monitor, conforms
from skytwin.live.errors import LiveInputError
from skytwin.planner.timing import to_trajectory
from skytwin.planner.trajectory import Trajectory

P = ConformanceParams()


def straight(fid="f", t0=0.0, length=1200.0, z=40.0, y=0.0):
    """Vertical take-off to z, straight east at 12 m/s, vertical landing."""
    return to_trajectory(fid, [[0, y, 0], [0, y, z], [length, y, z], [length, y, 0]], t0)


def at(traj, times):
    """Positions (n, 3) of ``traj`` at ``times`` (clamped), vectorised."""
    return np.column_stack([np.interp(times, traj.t_s, traj.xyz_m[:, c]) for c in range(3)])


def oracle(traj, t, p, prm, n=4001):
    """Dense sampling of tau in [t - T, t + T] (clamped plan), with tolerances."""
    taus = np.linspace(t - prm.time_tol_s, t + prm.time_tol_s, n)
    pos = at(traj, taus)
    dh = np.hypot(pos[:, 0] - p[0], pos[:, 1] - p[1])
    dv = np.abs(pos[:, 2] - p[2])
    return dh, dv


def test_exact_tube_agrees_with_dense_sampling():
    rng = np.random.default_rng(4)
    xyz = np.column_stack([rng.uniform(0, 400, 7), rng.uniform(0, 400, 7),
                           rng.uniform(20, 60, 7)])
    xyz[0, 2] = xyz[-1, 2] = 0.0
    tr = to_trajectory("r", xyz, 100.0)
    t = rng.uniform(90, tr.t_end_s + 10, 400)
    base = np.array([tr.position_at(x) for x in t])
    p = base + rng.normal(0, 6, (400, 3))
    ok = conforms(tr, t, p, P)
    n_in = n_out = 0
    for k in range(len(t)):
        dh, dv = oracle(tr, t[k], p[k], P)
        inside = (dh <= P.lateral_tol_m * 0.999) & (dv <= P.vertical_tol_m * 0.999)
        loose = (dh <= P.lateral_tol_m * 1.01) & (dv <= P.vertical_tol_m * 1.01)
        if inside.any():
            assert ok[k], k
            n_in += 1
        if not loose.any():
            assert not ok[k], k
            n_out += 1
    assert n_in > 50 and n_out > 50   # both sides were really exercised


def test_pad_before_departure_and_after_landing():
    tr = straight(t0=100.0)
    assert conforms(tr, [50, 400], [[0, 0, 0], [1200, 0, 0]]).tolist() == [True, True]
    # still on the pad 3 s after the planned climb started (4 m/s): 12 m low
    assert conforms(tr, [103 + P.time_tol_s], [[0, 0, 0]]).tolist() == [False]


def _fly(mon, fid, traj, times, offset_fn):
    evs = []
    s = mon.slot_of(fid)
    for t in times:
        p = traj.position_at(t) + offset_fn(t)
        evs += mon.update([s], [t], [p])[1]
        evs += mon.sweep(t + 0.2)
    return evs


def test_drift_nonconforming_then_contingent_with_evidence():
    tr = straight()
    mon = Monitor()
    mon.activate("f", tr, 0.0)
    # drift north at 5 m/s from t = 20 s: out of the 8 m tube after 1.6 s
    evs = _fly(mon, "f", tr, np.arange(1.0, 40.0, 1.0),
               lambda t: np.array([0, max(0.0, t - 20.0) * 5.0, 0]))
    nc = [e for e in evs if e.to_state == "nonconforming"]
    assert len(nc) == 1 and nc[0].reason == "out_of_volume"
    assert 21.0 < nc[0].t_s <= 23.0
    assert "deviation" in nc[0].detail
    ct = [e for e in evs if e.to_state == "contingent"]
    assert len(ct) == 1 and ct[0].reason == "excursion_limit"
    assert ct[0].t_s - nc[0].t_s == pytest.approx(P.contingent_after_s, abs=1.0)
    assert mon.state_of("f") == "contingent"


def test_recovery_and_single_outlier():
    tr = straight()
    mon = Monitor()
    mon.activate("f", tr, 0.0)
    # one wild fix at t=10 is tolerated; an excursion 20-24 s, back after
    def off(t):
        if t == 10 or 20 <= t <= 24:
            return np.array([0, 20.0, 0])
        return np.zeros(3)
    evs = _fly(mon, "f", tr, np.arange(1.0, 40.0, 1.0), off)
    assert [(e.to_state, e.reason) for e in evs] == [
        ("nonconforming", "out_of_volume"), ("activated", "back_in_conformance")]
    assert evs[0].t_s == 21.0 and evs[1].t_s == 25.0 + P.recover_after_s
    assert 0.8 < mon.conformance_share("f") < 0.9


def test_hold_and_late_departure_detected_within_5_s():
    tr = straight(t0=0.0)
    for onset, fn in ((30.0, lambda t: t if t < 30 else 30.0),   # hold at t=30
                      (0.0, lambda t: -1.0)):                      # never took off
        mon = Monitor()
        mon.activate("f", tr, 0.0)
        evs = []
        for t in np.arange(0.3, 60.0, 1.0):
            tp = fn(t)
            p = np.array([0.0, 0, 0]) if tp < 0 else tr.position_at(tp)
            evs += mon.update([0], [t], [p])[1]
        nc = [e for e in evs if e.to_state == "nonconforming"]
        assert nc and nc[0].t_s - onset <= 5.0, (onset, nc)


def test_silence_lost_link_and_landing():
    tr = straight()
    mon = Monitor()
    mon.activate("a", tr, 0.0)
    mon.activate("b", tr, 0.0)
    evs = []
    for t in np.arange(1.0, 140.0, 1.0):
        # a goes silent at t = 30; b reports until just after it landed
        sl = ([mon.slot_of("b")] if t <= tr.t_end_s + 1 else []) + \
            ([mon.slot_of("a")] if t < 30 else [])
        evs += mon.update(sl, [t] * len(sl), [tr.position_at(t)] * len(sl))[1]
        evs += mon.sweep(t + 0.5)
    a = [(e.to_state, e.reason, e.t_s) for e in evs if e.flight_id == "a"]
    assert a == [("nonconforming", "no_telemetry", 32.5), ("contingent", "lost_link", 44.5)]
    b = [(e.to_state, e.reason) for e in evs if e.flight_id == "b"]
    assert b == [("ended", "landed")]


def test_noise_gives_no_false_alarm_and_sweep_is_one_pass():
    rng = np.random.default_rng(9)
    n = 300
    mon = Monitor()
    trs = [straight(f"f{i}", t0=rng.uniform(0, 20), y=50.0 * i) for i in range(n)]
    for tr in trs:
        mon.activate(tr.flight_id, tr, 0.0)
    slots = mon.slots_of([tr.flight_id for tr in trs])
    ends = np.array([tr.t_end_s for tr in trs])
    evs = []
    for t in np.arange(1.0, 170.0, 1.0):
        tj = t + rng.uniform(-0.3, 0.3, n)
        p = np.array([at(tr, [x])[0] for tr, x in zip(trs, tj, strict=True)])
        p[:, :2] += rng.normal(0, 1.5, (n, 2))
        p[:, 2] += rng.normal(0, 1.0, n)
        flying = tj <= ends + 1.0          # drones stop reporting once landed
        evs += mon.update(slots[flying], tj[flying], p[flying])[1]
        evs += mon.sweep(t + 0.5)
    assert [e for e in evs if e.to_state != "ended"] == []
    assert sum(e.to_state == "ended" for e in evs) == n


def test_params_and_registry_checks():
    with pytest.raises(LiveInputError):
        ConformanceParams(lateral_tol_m=0)
    with pytest.raises(LiveInputError):
        ConformanceParams(silence_nonconforming_s=20, silence_contingent_s=10)
    mon = Monitor(capacity=1)
    tr = straight()
    mon.activate("a", tr, 0)
    with pytest.raises(LiveInputError):
        mon.activate("a", tr, 0)
    mon.activate("b", tr, 0, params=ConformanceParams(lateral_tol_m=30.0))
    ok, _ = mon.update(mon.slots_of(["a", "b", "zz"]), [60, 60, 60],
                       [[600, 20, 40]] * 3)
    assert ok.tolist() == [False, True, False]
    mon.remove("a")
    assert "a" not in mon and mon.slot_of("a") == -1
    mon.activate("c", Trajectory("c", [[0, 0, 0], [0, 0, 10]], [0, 5]), 0)
    assert mon.slot_of("c") == 0   # the freed slot is reused


def _worst_latency(params, kind, onset, sweep_s=0.25, phases=20):
    """Worst time from fault onset to Nonconforming over the report clock's phase and
    the sweep timer's phase (reports at 1 Hz, noise-free, the simulator's fault models;
    a sweep every ``sweep_s``)."""
    from skytwin.server.simulate import Fault, SimDrone
    tr = straight(length=1200.0, z=100.0)   # climb 25 s, cruise 100 s, descent 33 s
    worst = 0.0
    for ph in np.arange(phases) / phases:
        d = SimDrone("f", 0, tr, Fault(kind, onset, {"drift": 5.0, "climb": 3.0,
                                                     "late": 60.0}.get(kind, 0.0)))
        mon = Monitor(params)
        mon.activate("f", tr, 0.0)
        reports = [(float(t), 0) for t in np.arange(ph, tr.t_end_s, 1.0)]
        sweeps = [(float(t), 1) for t in np.arange(0.37 * (1 + 13 * ph) % sweep_s,
                                                   tr.t_end_s, sweep_s)]
        t_nc = None
        for t, what in sorted(reports + sweeps):
            if what == 1:
                evs = mon.sweep(t)
            elif kind == "lost_link" and t >= onset:
                continue
            else:
                evs = mon.update([0], [t], [d.true_at(t)])[1]
            if any(e.to_state == "nonconforming" for e in evs):
                t_nc = t
                break
        assert t_nc is not None and t_nc >= onset, (kind, onset, ph)
        worst = max(worst, t_nc - onset)
    return worst


# (kind, onset [s], documented bound [s]) of the table in live/conformance.py; the
# plan: vertical climb 0-25 s, cruise 25-125 s, vertical descent 125-158 s
BOUNDS = [("drift", 60.0, 3.2), ("climb", 60.0, 3.0), ("climb", 8.0, 4.33),
          ("climb", 130.0, 4.0), ("hold", 60.0, 3.5), ("hold", 8.0, 3.75),
          ("late", 0.0, 3.75), ("hold", 130.0, 4.0), ("lost_link", 60.0, 3.25)]


@pytest.mark.parametrize("kind,onset,bound", BOUNDS)
def test_detection_bound_per_fault_kind(kind, onset, bound):
    """F3548: Nonconforming within 5 s of the fault onset. The worst case over the
    report clock's phase is the documented bound, with margin under 5 s; the previous
    defaults (time tolerance 1.5 s, two out-of-volume reports, a 1 s sweep) reached
    5.67 s for a climb during the plan's climb."""
    worst = _worst_latency(P, kind, onset)
    assert worst <= bound + 0.06, (kind, onset, worst)
    assert worst < 4.6


def test_previous_defaults_missed_the_5_s_bound():
    old = ConformanceParams(time_tol_s=1.5, edge_margin_h_m=0.0, edge_margin_v_m=0.0)
    assert _worst_latency(old, "climb", 8.0, sweep_s=1.0) > 5.0
    assert _worst_latency(old, "lost_link", 60.0, sweep_s=1.0) > \
        _worst_latency(P, "lost_link", 60.0) + 0.5
