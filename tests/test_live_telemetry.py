"""Telemetry validation: one status per report, each rule able to fail."""

from __future__ import annotations

import numpy as np
import pytest

from skytwin.airspace.frame import Frame
from skytwin.live.errors import LiveInputError
from skytwin.live.telemetry import ReportBatch, ReportStatus as S, TelemetryLimits, \
    TrackState, validate_reports

FRAME = Frame(24.94, 60.17)
NAN = float("nan")


def batch(rows, vel=None, acc_h=None):
    """rows: (slot, t, x_m, y_m, alt_m) in the local frame of FRAME."""
    r = np.asarray(rows, float)
    lon, lat = FRAME.to_wgs84(r[:, 2], r[:, 3])
    return ReportBatch.from_wgs84(FRAME, r[:, 0].astype(int), r[:, 1], lon, lat, r[:, 4],
                                  vel_mps=vel, acc_h_m=acc_h)


def names(st):
    return [S(s).name for s in st]


def test_statuses_in_one_batch():
    st = TrackState(8)
    b = batch([(0, 100, 0, 0, 30), (1, 100, 0, 0, 30), (2, 110, 0, 0, 30),
               (3, 50, 0, 0, 30), (4, 100, 0, 0, 20000), (-1, 100, 0, 0, 30),
               (5, 100, 0, 0, 30)])
    pre = np.zeros(len(b), np.int8)
    pre[6] = S.FOREIGN_FLIGHT
    s = validate_reports(b, st, now_s=100.5, pre_status=pre)
    assert names(s) == ["OK", "OK", "IN_FUTURE", "TOO_OLD", "OUT_OF_RANGE",
                        "UNKNOWN_FLIGHT", "FOREIGN_FLIGHT"]
    assert st.last_t_s[0] == 100 and np.isnan(st.last_t_s[2])


def test_non_finite_and_ranges():
    st = TrackState(4)
    b = batch([(0, 100, 0, 0, 30)] * 5, vel=[[1, 0, 0], [NAN, NAN, NAN], [np.inf, 0, 0],
                                            [200, 0, 0], [5, 5, 0]],
              acc_h=[1, NAN, 1, 1, -1])
    b.t_s[:] = [100, 101, 102, 103, 104]
    s = validate_reports(b, st, now_s=104)
    assert names(s) == ["OK", "OK", "NON_FINITE", "OUT_OF_RANGE", "OUT_OF_RANGE"]
    b2 = ReportBatch.from_wgs84(FRAME, [0, 0], [105, 106], [200.0, 24.94], [60.17, NAN],
                                [30, 30])
    assert names(validate_reports(b2, st, now_s=106)) == ["OUT_OF_RANGE", "NON_FINITE"]


def test_jumps_and_staleness_report_by_report():
    st = TrackState(2)
    # 1 s apart: 40 m is fine (35 m/s + 10 m), 100 m is not; a duplicate time is stale
    b = batch([(0, 100, 0, 0, 30), (0, 101, 40, 0, 30), (0, 102, 140, 0, 30),
               (0, 102, 41, 0, 30), (0, 103, 41, 0, 60)])
    s = validate_reports(b, st, now_s=103)
    assert names(s) == ["OK", "OK", "IMPOSSIBLE_JUMP", "OK", "IMPOSSIBLE_JUMP"]
    # out-of-order within a batch: sorted by time first, the older one is applied first
    b = batch([(1, 101, 10, 0, 30), (1, 100, 0, 0, 30)])
    assert names(validate_reports(b, st, now_s=103)) == ["OK", "OK"]
    b = batch([(1, 100.5, 5, 0, 30)])
    assert names(validate_reports(b, st, now_s=103)) == ["STALE"]
    # after a position reset the allowance grows with time: accepted again later
    b = batch([(0, 110, 400, 0, 30)])
    assert names(validate_reports(b, st, now_s=110)) == ["IMPOSSIBLE_JUMP"]
    b = batch([(0, 120, 400, 0, 30)])
    assert names(validate_reports(b, st, now_s=120)) == ["OK"]


def test_accuracy_widens_the_jump_allowance():
    st = TrackState(1)
    validate_reports(batch([(0, 100, 0, 0, 30)]), st, now_s=100)
    b = batch([(0, 101, 60, 0, 30)], acc_h=[8.0])
    assert names(validate_reports(b, st, now_s=101)) == ["OK"]


def test_limits_are_checked():
    with pytest.raises(LiveInputError):
        TelemetryLimits(max_h_speed_mps=0)
    with pytest.raises(LiveInputError):
        TelemetryLimits(max_age_s=float("nan"))


def test_large_batch_is_vectorised():
    rng = np.random.default_rng(1)
    n = 20_000
    st = TrackState(5000)
    rows = np.column_stack([rng.integers(0, 5000, n), 1000 + rng.uniform(0, 1, n),
                            rng.uniform(-100, 100, n), rng.uniform(-100, 100, n),
                            np.full(n, 40.0)])
    s = validate_reports(batch(rows), st, now_s=1001)
    assert set(np.unique(s)) <= {S.OK, S.IMPOSSIBLE_JUMP, S.STALE}
    assert (s == S.OK).sum() >= 5000 * 0.9
