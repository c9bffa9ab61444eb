"""The service core without a transport: booking lock, safety net, restart, auth file."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from skytwin.airspace.errors import MalformedInputError
from skytwin.airspace.zones import Altitude, Circle, Zone
from skytwin.planner.route import RouteRequest
from skytwin.server.auth import Authenticator, load_tokens
from skytwin.server.service import (
    BookingRejectedError,
    Caller,
    IdempotencyMismatchError,
    ServiceCore,
    UnauthenticatedError,
    WrongRoleError,
)
from skytwin.server.store import Store
from tests.grpc_fixtures import helsinki_twin

FROM = (24.94030, 60.17150)
TO = (24.95240, 60.16760)
MID = (24.94828, 60.17026)   # half-way along the planned route between them
T0 = float(int(time.time()) + 7200)
OP = Caller("a", "operator", "op-a")
REGULATOR = Caller("r", "regulator")
META = {"priority": 1.0, "max_delay_s": 600.0, "speeds": {}}


@pytest.fixture
def core(tmp_path):
    twin, ref = helsinki_twin()
    c = ServiceCore(twin, Store(tmp_path / "s.db"), twin_ref=ref)
    yield c
    c.close()


def test_concurrent_submits_never_share_a_slot(core):
    from skytwin.planner.verify import verify
    req = RouteRequest(FROM, TO, depart_s=T0)
    with ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(core.submit_flight, OP, f"c-{n}", req, META) for n in range(6)]
        recs = [f.result()[0] for f in futs]
    starts = sorted(r.trajectory.t_start_s for r in recs)
    assert len(set(starts)) == 6 and starts[0] == T0
    assert verify([r.trajectory for r in recs]).ok
    assert len(core.index) == core.store.count_flights() == 6


def test_nothing_failing_the_final_checks_is_accepted(core, monkeypatch):
    """A route planned without a zone that now exists is refused by the validator."""
    route = core.plan(RouteRequest(FROM, TO, depart_s=T0))
    zone = Zone(id="Z-MID", circle=Circle(*MID, 40.0), lower=Altitude(0, "AGL"),
                upper=Altitude(200, "AGL"))
    _, affected = core.create_zone(REGULATOR, zone)
    assert affected == []
    monkeypatch.setattr(core, "plan", lambda req, caller=None: route)  # stale planner
    with pytest.raises(BookingRejectedError, match="no-fly volume Z-MID"):
        core.submit_flight(OP, "stale", RouteRequest(FROM, TO, depart_s=T0), META)
    assert core.store.count_flights() == 0 and len(core.index) == 0
    assert [c.kind for c in core._changes] == ["zone_added"]


def test_zone_reports_affected_flights_without_cancelling(core):
    rec, _ = core.submit_flight(OP, "z-1", RouteRequest(FROM, TO, depart_s=T0), META)
    zone = Zone(id="Z-MID", circle=Circle(*MID, 40.0), lower=Altitude(0, "AGL"),
                upper=Altitude(200, "AGL"))
    _, affected = core.create_zone(REGULATOR, zone)
    assert affected == [rec.flight_id]
    assert core.get_flight(OP, rec.flight_id).status == "accepted"
    later = Zone(id="Z-LATER", circle=Circle(*MID, 40.0), lower=Altitude(0, "AGL"),
                 upper=Altitude(200, "AGL"), window=(T0 + 86_400, None))
    assert core.create_zone(REGULATOR, later)[1] == []        # not active then
    with pytest.raises(WrongRoleError, match="only regulators may delete zones"):
        core.delete_zone(OP, "Z-MID")


def test_restart_rebuilds_index_and_zones(tmp_path):
    twin, ref = helsinki_twin()
    c = ServiceCore(twin, Store(tmp_path / "s.db"), twin_ref=ref)
    rec, _ = c.submit_flight(OP, "r-1", RouteRequest(FROM, TO, depart_s=T0), META)
    c.create_zone(REGULATOR, Zone(id="Z", circle=Circle(24.937, 60.176, 20.0),
                                  lower=Altitude(0, "AGL"), upper=Altitude(90, "AGL")))
    c.close()
    c2 = ServiceCore(twin, Store(tmp_path / "s.db"), twin_ref=ref)
    try:
        assert rec.flight_id in c2.index and "Z" in c2.zones
        rec2, replayed = c2.submit_flight(Caller("b", "operator", "op-b"), "r-1",
                                          RouteRequest(FROM, TO, depart_s=T0), META)
        assert not replayed and rec2.trajectory.t_start_s > T0   # delayed, not on top
    finally:
        c2.close()


def test_token_file_errors_and_bearer_parsing(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text('[[token]]\ntoken = "abcdefgh12"\nrole = "pilot"\n')
    with pytest.raises(MalformedInputError, match=r"token\[0\].*role must be"):
        load_tokens(p)
    p.write_text('[[token]]\ntoken = "abcdefgh12"\nrole = "operator"\n')
    with pytest.raises(MalformedInputError, match="needs operator_id"):
        load_tokens(p)
    p.write_text('[[token]]\ntoken = "abcdefgh12"\nrole = "operator"\noperator_id = "x"\n')
    auth = Authenticator(load_tokens(p))
    assert auth.caller([("authorization", "Bearer abcdefgh12")]).operator_id == "x"
    with pytest.raises(UnauthenticatedError, match="unknown"):
        auth.caller([("authorization", "Bearer abcdefgh13")])
    with pytest.raises(UnauthenticatedError, match="missing"):
        auth.caller([])
    with pytest.raises(MalformedInputError, match="not found"):
        load_tokens(tmp_path / "none.toml")


def test_dev_tokens_file_says_not_for_production():
    from skytwin.server.auth import DEV_TOKENS
    text = DEV_TOKENS.read_text()
    assert "NEVER use" in text and "production" in text
    roles = {c.role for c in load_tokens(DEV_TOKENS).values()}
    assert roles == {"operator", "regulator"}


@pytest.mark.parametrize("layer_shifts", [(0,), (0, 1, -1, 2)])
def test_crossing_flights_all_pass_the_independent_checks(tmp_path, layer_shifts):
    """Whatever placement chose (delay, or a layer that the checks refused and then a
    delay), every accepted flight passes the validator and the verifier."""
    twin, _ = helsinki_twin()
    core = ServiceCore(twin, Store(tmp_path / "s.db"), layer_shifts=layer_shifts)
    from skytwin.airspace.zones import ground_range_from_grid
    from skytwin.planner.timing import SpeedProfile
    from skytwin.planner.validate import RouteValidator
    from skytwin.planner.verify import verify
    pairs = [(FROM, TO), ((24.9420, 60.1665), (24.9500, 60.1722)),
             ((24.9460, 60.1660), (24.9450, 60.1740)), (TO, FROM)]
    recs = []
    for n in range(8):
        a, b = pairs[n % len(pairs)]
        recs.append(core.submit_flight(OP, f"x-{n}", RouteRequest(a, b, depart_s=T0),
                                       META)[0])
    twin = core.twin
    v = RouteValidator(twin.buildings, twin.clearance_m)
    gr = ground_range_from_grid(twin.grid, twin.ground_m)
    for r in recs:
        tr = r.trajectory
        assert v.check(tr.xyz_m, tr.t_s, SpeedProfile(), ground_range=gr).ok
        assert 0 <= r.meta["delay_s"] <= 600
        assert r.meta["start_lonlat"] in ([list(p[0]) for p in pairs])
    assert verify([r.trajectory for r in recs]).ok
    core.close()


def test_bad_page_token_is_invalid_argument(core):
    with pytest.raises(ValueError, match="page_token 'F-nope' is not a token"):
        core.list_flights(OP, page_token="F-nope")


def test_failed_write_releases_the_reservation(core, monkeypatch):
    def broken(rec):
        raise OSError("disk full")
    monkeypatch.setattr(core.store, "add_flight", broken)
    req = RouteRequest(FROM, TO, depart_s=T0)
    with pytest.raises(OSError, match="disk full"):
        core.submit_flight(OP, "w-1", req, META)
    assert len(core.index) == 0 and list(core._changes) == []
    monkeypatch.undo()
    rec, _ = core.submit_flight(OP, "w-1", req, META)
    assert rec.trajectory.t_start_s == T0            # the slot was free again


def test_concurrent_retry_books_once(core, monkeypatch):
    """Two retries of one request both missing the lookup (as when racing the other's
    commit): the store keeps one, the loser releases its reservation and answers with
    the winner's flight."""
    real = core.store.find_request
    monkeypatch.setattr(core.store, "find_request",
                        lambda op, rid: None if rid == "race" else real(op, rid))
    req = RouteRequest(FROM, TO, depart_s=T0)
    with ThreadPoolExecutor(2) as ex:
        res = list(ex.map(lambda _: core.submit_flight(OP, "race", req, META), range(2)))
    assert res[0][0].flight_id == res[1][0].flight_id
    assert sorted(r[1] for r in res) == [False, True]
    assert core.store.count_flights() == 1 and len(core.index) == 1
    assert [c.kind for c in core._changes] == ["flight_accepted"]


def test_retry_arriving_during_the_originals_commit_replays_it(core, monkeypatch):
    """A retry sent while its original is being committed waits for it and answers with
    its flight, even with no delay allowed (booking again would be refused by the
    original's own flight): the request is looked up with its slot held, and the
    original releases the slot only after its commit."""
    import threading
    real = core.store.add_flight
    committing = threading.Event()

    def slow(rec):
        committing.set()
        time.sleep(0.3)
        return real(rec)
    monkeypatch.setattr(core.store, "add_flight", slow)
    meta = dict(META, max_delay_s=0.0)
    req = RouteRequest(FROM, TO, depart_s=T0)
    with ThreadPoolExecutor(2) as ex:
        first = ex.submit(core.submit_flight, OP, "slow", req, meta)
        assert committing.wait(60)
        second = ex.submit(core.submit_flight, OP, "slow", req, meta)
        (a, ra), (b, rb) = first.result(60), second.result(60)
    assert a.flight_id == b.flight_id and (ra, rb) == (False, True)
    assert core.store.count_flights() == 1 and len(core.index) == 1


def test_racing_batches_of_one_id_leave_the_index_as_the_store(core, monkeypatch):
    """Two SubmitBatch of one request id but different sizes, the second missing the
    first's commit: the store keeps the first's members and the second's extra one;
    every stored flight stays in the index (so later bookings avoid it), nothing else
    does, and the second is refused as a different request."""
    recs, _, _ = core.submit_batch(OP, "X", [RouteRequest(FROM, TO, depart_s=T0 + 3600 * k)
                                            for k in range(2)], [META] * 2, digest="d1")
    monkeypatch.setattr(core, "_find_batch", lambda *a, **k: None)   # raced the commit
    with pytest.raises(IdempotencyMismatchError):
        core.submit_batch(OP, "X", [RouteRequest(TO, FROM, depart_s=T0 + 900 + 3600 * k)
                                    for k in range(3)], [META] * 3, digest="d2")
    stored = {r.flight_id for r in core.store.list_flights()}
    assert len(stored) == 3 and {r.flight_id for r in recs} < stored
    assert {fid for fid in stored if fid in core.index} == stored
    assert len(core.index) == 3
    assert [c.kind for c in core._changes].count("flight_accepted") == 3


def test_change_sequence_never_goes_backwards_across_a_restart(tmp_path):
    twin, ref = helsinki_twin()
    c = ServiceCore(twin, Store(tmp_path / "seq.db"), twin_ref=ref)
    for n in range(3):
        c.submit_flight(OP, f"s-{n}", RouteRequest(FROM, TO, depart_s=T0 + 600 * n), META)
    before = c.sequence
    assert before >= 3
    c.close()
    c2 = ServiceCore(twin, Store(tmp_path / "seq.db"), twin_ref=ref)
    try:
        assert c2.sequence >= before
        c2.submit_flight(OP, "s-after", RouteRequest(FROM, TO, depart_s=T0 + 3000), META)
        assert c2.sequence > before
    finally:
        c2.close()


def _failing_commit(store, monkeypatch, when):
    """The store's next COMMIT fails with a disk error: ``"after"`` the rows reached
    the database (as when fsync fails after SQLite wrote them), ``"before"`` (rolled
    back), or ``"begin"``: the transaction fails before any row is written."""
    import sqlite3
    armed = [1]

    class Conn:
        def __init__(self, conn):
            self._c = conn

        def execute(self, sql, *args):
            if armed[0] and sql in ("COMMIT", "BEGIN IMMEDIATE"):
                if when == "begin" and sql == "BEGIN IMMEDIATE":
                    armed[0] = 0
                    raise sqlite3.OperationalError("disk I/O error")
                if sql == "COMMIT" and when != "begin":
                    armed[0] = 0
                    self._c.execute("COMMIT" if when == "after" else "ROLLBACK")
                    raise sqlite3.OperationalError("disk I/O error")
            return self._c.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._c, name)

    for name in ("_commit_one", "_commit_group"):
        real = getattr(store, name)
        monkeypatch.setattr(store, name, lambda conn, *a, _r=real: _r(Conn(conn), *a))


def _core_whose_commit_fails(tmp_path, monkeypatch, when):
    """A service core on a fresh store whose next COMMIT fails (:func:`_failing_commit`),
    its store's path, and the request both tests book."""
    twin, ref = helsinki_twin()
    path = tmp_path / f"{when}.db"
    core = ServiceCore(twin, Store(path), twin_ref=ref)
    _failing_commit(core.store, monkeypatch, when)
    return core, path, RouteRequest(FROM, TO, depart_s=T0)


def _stored_trajectories(path):
    with Store(path) as s:               # what a restart loads, read afresh
        return [r.trajectory for r in s.list_flights()]


def test_a_failed_commit_whose_rows_landed_keeps_their_space(tmp_path, monkeypatch):
    """COMMIT reports a disk error although the flight reached the store: the booking
    answers an error (nothing acknowledged) but its space stays reserved, so the same
    slot asked again is placed around it, and a retry of the request replays it (and
    announces it to the watchers, once); the stored flights are conflict-free
    (independent verifier, on the file read afresh).
    Releasing the space, as before, booked the second flight on top of the first."""
    from skytwin.planner.verify import verify
    from skytwin.server.store import CommitUncertainError
    core, path, req = _core_whose_commit_fails(tmp_path, monkeypatch, "after")
    try:
        with pytest.raises(CommitUncertainError, match="with the same request_id"):
            core.submit_flight(OP, "u-1", req, META)
        assert core.store.count_flights() == 1 and len(core.index) == 1
        other, replayed = core.submit_flight(OP, "u-2", req, META)
        assert not replayed and other.meta["delay_s"] > 0
        first, replayed = core.submit_flight(OP, "u-1", req, META)
        assert replayed and first.flight_id != other.flight_id
        core.submit_flight(OP, "u-1", req, META)          # announced once, not again
        announced = [c.flight.flight_id for c in core._changes
                     if c.kind == "flight_accepted"]
        assert sorted(announced) == sorted([other.flight_id, first.flight_id])
    finally:
        core.close()
    trs = _stored_trajectories(path)
    assert len(trs) == 2 and verify(trs, core.sep).ok


def test_a_failed_commit_that_rolled_back_is_rebooked_by_its_retry(tmp_path, monkeypatch):
    """COMMIT fails and nothing reached the store: the space stays reserved all the same
    (the server cannot tell the two cases apart), the retry books the request around
    it, and a restart, rebuilding the index from the store, drops the phantom."""
    from skytwin.server.store import CommitUncertainError
    core, path, req = _core_whose_commit_fails(tmp_path, monkeypatch, "before")
    try:
        with pytest.raises(CommitUncertainError):
            core.submit_flight(OP, "r-1", req, META)
        assert core.store.count_flights() == 0 and len(core.index) == 1
        rec, replayed = core.submit_flight(OP, "r-1", req, META)
        assert not replayed and core.store.count_flights() == 1
    finally:
        core.close()
    again = ServiceCore(core.twin, Store(path), twin_ref=helsinki_twin()[1])
    try:
        assert len(again.index) == 1 and rec.flight_id in again.index
    finally:
        again.close()


def test_a_write_failing_before_its_commit_frees_the_space(core, monkeypatch):
    """A transaction that fails before COMMIT wrote nothing: StoreWriteError, and the
    space is free again at once (the same slot is booked with no delay)."""
    from skytwin.server.store import CommitUncertainError, StoreWriteError
    req = RouteRequest(FROM, TO, depart_s=T0)
    _failing_commit(core.store, monkeypatch, "begin")
    with pytest.raises(StoreWriteError, match="nothing was written") as err:
        core.submit_flight(OP, "b-1", req, META)
    assert not isinstance(err.value, CommitUncertainError)
    assert core.store.count_flights() == 0 and len(core.index) == 0
    rec, _ = core.submit_flight(OP, "b-2", req, META)
    assert rec.meta["delay_s"] == 0
