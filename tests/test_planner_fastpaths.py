"""Fast paths of the booking hot path against their straightforward twins, on random
inputs: the vectorised delay marking of ``place``, the deduplicated key lookup of
``AcceptedIndex._near_gids``, the pair-by-pair candidates of ``place``
(``pairs_across``) and the stacked line arithmetic of the verifier's exact
segment-pair test must give exactly what the loops they replaced give."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from skytwin.fixtures.traffic import generate
from skytwin.planner import conflicts
from skytwin.planner.conflicts import Separation, pack_segments, pairs_across
from skytwin.planner.deconflict import (
    AcceptedIndex,
    DeconflictOptions,
    _blocked_delays,
    _rows_between,
    place,
)
from skytwin.planner.trajectory import Trajectory
from skytwin.planner.verify import _segment_pairs_exact


def _blocked_delays_loop(rows, n_new, k):
    """The slice-by-slice marking ``place`` used to do."""
    feas = np.ones((n_new, k + 1), bool)
    for _fa, oa, _fb, ob, kmin, kmax in rows.tolist():
        if oa < n_new <= ob:
            feas[oa, max(0, -kmax):max(0, -kmin + 1)] = False
        elif ob < n_new <= oa:
            feas[ob, max(0, kmin):max(0, kmax + 1)] = False
    return ~feas


@pytest.mark.parametrize("seed", range(20))
def test_blocked_delays_equals_the_slice_loop(seed):
    rng = np.random.default_rng(seed)
    n_new, n_near, k = int(rng.integers(1, 6)), int(rng.integers(0, 8)), int(rng.integers(0, 40))
    r = int(rng.integers(0, 60))
    oa = rng.integers(0, n_new + n_near, r)
    ob = rng.integers(0, n_new + n_near, r)
    kmin = rng.integers(-k - 10, k + 10, r)
    kmax = kmin + rng.integers(-3, 2 * k + 10, r)
    rows = np.column_stack([oa, oa, ob, ob, kmin, kmax]).astype(np.int64)
    assert np.array_equal(_blocked_delays(rows, n_new, k), _blocked_delays_loop(rows, n_new, k))


def _every_cross_pair(segs, n_first, *_args, **_kw):
    """All pairs (i < n_first <= j): no candidate filter at all."""
    m = segs.t0.shape[0]
    ii, jj = np.meshgrid(np.arange(n_first), np.arange(n_first, m), indexing="ij")
    return ii.ravel().astype(np.int64), jj.ravel().astype(np.int64)


def _place_tables(seed):
    """``place``'s segment table for one new flight (three layer options) against the
    accepted flights of a dense random scenario, as ``place`` builds it."""
    rng = np.random.default_rng(seed)
    trs, _ = generate(60, seed, area_m=1500.0, duration_s=900.0, n_hubs=2, pads_per_hub=3,
                      delivery_radius_m=700.0, max_delay_s=300.0)
    accepted = trs[:40]
    # the new flight takes an accepted one's path, a little aside, up to 4 min earlier
    # (a delay within its budget makes them meet)
    base = accepted[int(rng.integers(len(accepted)))]
    new = Trajectory("new", base.xyz_m + [*rng.uniform(-15.0, 15.0, 2), 0.0],
                     base.t_s - rng.uniform(10.0, 240.0))
    # layer options closer than the vertical minimum (10 m): the vertical test matters
    opts = [new] + [Trajectory("new", new.xyz_m + [0.0, 0.0, dz], new.t_s)
                    for dz in (-8.0, 8.0)]
    own, near = pack_segments(opts), pack_segments(accepted)
    from skytwin.planner.conflicts import SegmentTable
    segs = SegmentTable(np.concatenate([own.p0, near.p0]), np.concatenate([own.p1, near.p1]),
                        np.concatenate([own.t0, near.t0]), np.concatenate([own.t1, near.t1]),
                        np.concatenate([own.owner, near.owner + len(opts)]))
    group = np.array([0] * len(opts) + [1] * len(accepted), np.int64)
    k = 30
    max_steps = np.array([k] * len(opts) + [0] * len(accepted), np.int64)
    return segs, own.t0.shape[0], group, max_steps, new, accepted


@pytest.mark.parametrize("seed", range(12))
def test_pairs_across_rows_equal_every_pair_and_the_buckets(seed, monkeypatch):
    """The exclusion rows ``place`` builds from ``pairs_across`` equal those from every
    cross pair (no filter: the exact shift intervals decide each one) and those from
    ``candidate_pairs``' buckets: the box test drops no pair that matters."""
    segs, n_first, group, max_steps, *_ = _place_tables(seed)
    sep, opts = Separation(30.0, 10.0, 5.0), DeconflictOptions()
    flights = np.arange(int(segs.owner.max()) + 1, dtype=np.int64)

    def rows(**kw):
        return _rows_between(None, flights, max_steps, sep, opts, group=group, segs=segs,
                             **kw)
    fast = rows(n_first=n_first)
    buckets = rows()
    with monkeypatch.context() as m:
        m.setattr(conflicts, "pairs_across", _every_cross_pair)
        every = rows(n_first=n_first)
    assert every.shape[0] > 0          # the scenario has conflicts to find
    assert np.array_equal(fast, every)
    assert np.array_equal(fast, buckets)
    # and the filter filters: fewer pairs than all of them, sorted by (i, j)
    pad_lo = np.full(segs.t0.shape[0], 0.5 * sep.time_buffer_s)
    pad_hi = pad_lo + opts.delay_step_s * max_steps[segs.owner]
    pi, pj = pairs_across(segs, n_first, sep, pad_lo, pad_hi)
    assert 0 < pi.size < n_first * (segs.t0.shape[0] - n_first)
    assert np.all(pi < n_first) and np.all(pj >= n_first)
    assert np.all(np.diff(pi * segs.t0.shape[0] + pj) > 0)


@pytest.mark.parametrize("seed", range(4))
def test_place_is_the_same_without_the_pair_by_pair_path(seed, monkeypatch):
    trs, _ = generate(80, seed, area_m=1500.0, duration_s=900.0, n_hubs=2, pads_per_hub=3,
                      delivery_radius_m=700.0, max_delay_s=300.0)

    def run():
        idx, out = AcceptedIndex(Separation(30.0, 10.0, 5.0)), []
        for tr in trs:
            p = place(tr, idx)
            out.append(None if p.trajectory is None
                       else (p.choice.delay_s, p.choice.layer_shift))
            if p.trajectory is not None:
                idx.accept(p.trajectory)
        return out
    calls = []
    real = conflicts.pairs_across
    monkeypatch.setattr(conflicts, "pairs_across",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    fast = run()
    assert calls                                               # the fast path ran
    monkeypatch.setattr(conflicts, "ACROSS_MAX_TESTS", -1)     # buckets only
    n = len(calls)
    assert run() == fast
    assert len(calls) == n
    assert sum(1 for o in fast if o is not None and o != (0.0, 0)) > 0   # some moved


@pytest.mark.parametrize("axis, gap, kept", [
    ("y", 29.9, True), ("y", 30.1, False),            # horizontal minimum 30 m
    ("z", 9.9, True), ("z", 10.1, False),             # vertical minimum 10 m
    ("t", 114.9, True), ("t", 115.1, False),          # later: buffer/2 + 100 s delay + b/2
    ("t", -14.9, True), ("t", -15.1, False),          # earlier: its 10 s + b/2 + b/2
])
def test_pairs_across_at_the_minima(axis, gap, kept):
    """Two parallel 10 s segments, the accepted one ``gap`` away along one axis: the pair
    is a candidate exactly while the grown boxes and windows meet (H, V, and the time
    buffer plus the new flight's 100 s delay budget on its late side)."""
    from skytwin.planner.conflicts import SegmentTable
    sep = Separation(30.0, 10.0, 5.0)
    dy, dz, t0 = (gap if axis == "y" else 0.0), (gap if axis == "z" else 0.0), \
        (gap if axis == "t" else 0.0)
    p0 = np.array([[0.0, 0.0, 50.0], [0.0, dy, 50.0 + dz]])
    p1 = p0 + [100.0, 0.0, 0.0]
    segs = SegmentTable(p0, p1, np.array([0.0, t0]), np.array([10.0, t0 + 10.0]),
                        np.array([0, 1], np.int64))
    pad_lo = np.full(2, 2.5)
    pad_hi = pad_lo + [100.0, 0.0]
    pi, pj = pairs_across(segs, 1, sep, pad_lo, pad_hi)
    assert (pi.tolist(), pj.tolist()) == (([0], [1]) if kept else ([], []))


def _near_gids_loop(idx, trajs, max_delay_s):
    """The per-key loop ``_near_gids`` used to run."""
    segs = pack_segments(trajs)
    delay = np.array([t.max_delay_s if max_delay_s is None else max_delay_s
                      for t in trajs], np.float64)
    short, _, long_cells, _ = idx._entries(segs, delay[segs.owner])
    short = set(short)
    out = set()
    for k in short:
        out |= idx._bucket.get(k, set())
    for c in {k[0] for k in short}:
        out |= idx._long.get(c, set())
    for c in set(long_cells):
        out |= idx._cell.get(c, set())
    return out


@pytest.mark.parametrize("seed", range(6))
def test_near_gids_equals_the_key_loop(seed):
    trs, _ = generate(40, seed, area_m=2000.0, duration_s=900.0, n_hubs=2, pads_per_hub=3,
                      delivery_radius_m=900.0, max_delay_s=300.0)
    idx = AcceptedIndex(Separation(30.0, 10.0, 5.0), bucket_s=60.0)
    for tr in trs[:30]:
        idx.accept(tr)
    # a flight lasting far more than MAX_SPAN buckets (entered under its cells alone)
    long_ = Trajectory("long", [[0, 0, 0], [0, 0, 60], [900, 300, 60], [900, 300, 0]],
                       [0.0, 20.0, 1e6, 1e6 + 20.0])
    idx.accept(long_)
    idx.cancel(trs[3].flight_id)
    for tr in trs[30:]:
        for md in (None, 0.0, 600.0):
            assert idx._near_gids([tr], md) == _near_gids_loop(idx, [tr], md)
    assert idx._near_gids([long_.shifted(5.0)], None) == _near_gids_loop(
        idx, [long_.shifted(5.0)], None)
    assert idx._near_gids(trs[30:], 120.0) == _near_gids_loop(idx, trs[30:], 120.0)


def _segment_pairs_exact_loop(sa, sb, h_m, v_m, buf_s):
    """The verifier's exact test with one line (pair) at a time, as first written."""
    ref = np.minimum(sa["t0"], sb["t0"])
    sa = dict(sa, t0=sa["t0"] - ref, t1=sa["t1"] - ref)
    sb = dict(sb, t0=sb["t0"] - ref, t1=sb["t1"] - ref)
    k = sa["t0"].shape[0]
    va = (sa["p1"] - sa["p0"]) / (sa["t1"] - sa["t0"])[:, None]
    vb = (sb["p1"] - sb["p0"]) / (sb["t1"] - sb["t0"])[:, None]
    c = sa["p0"] - va * sa["t0"][:, None] - (sb["p0"] - vb * sb["t0"][:, None])
    one, zero = np.ones(k), np.zeros(k)
    lines = [(one, zero, sa["t0"]), (one, zero, sa["t1"]),
             (zero, one, sb["t0"]), (zero, one, sb["t1"])]
    zconst = (va[:, 2] == 0) & (vb[:, 2] == 0)
    gu, gw = va[:, 2], -vb[:, 2]
    lines += [(gu, gw, v_m - c[:, 2]), (gu, gw, -v_m - c[:, 2])]
    line_ok = [np.ones(k, bool)] * 4 + [~zconst, ~zconst]
    m11, m12, m21, m22 = va[:, 0], -vb[:, 0], va[:, 1], -vb[:, 1]
    chx, chy = c[:, 0], c[:, 1]
    det = m11 * m22 - m12 * m21
    scale = np.maximum(1.0, np.maximum.reduce([abs(m11), abs(m12), abs(m21), abs(m22)]) ** 2)
    rank2 = np.abs(det) > 1e-12 * scale
    rank0 = (m11 == 0) & (m12 == 0) & (m21 == 0) & (m22 == 0)
    alive = ~(zconst & ~(np.abs(c[:, 2]) < v_m))
    alive &= ~(rank0 & ~(chx * chx + chy * chy < h_m * h_m))
    rank1 = ~rank2 & ~rank0
    na, nb = np.hypot(m11, m21), np.hypot(m12, m22)
    ex, ey = np.where(na >= nb, m11, m12), np.where(na >= nb, m21, m22)
    nn = np.hypot(ex, ey)
    nn = np.where(nn > 0, nn, 1.0)
    cperp = (chx * ey - chy * ex) / nn
    alive &= ~(rank1 & (cperp * cperp >= h_m * h_m))
    us, ws, oks = [], [], []
    for i, j in combinations(range(6), 2):
        (au, aw, qa), (bu, bw, qb) = lines[i], lines[j]
        d = au * bw - aw * bu
        good = line_ok[i] & line_ok[j] & (np.abs(d) > 1e-12)
        dd = np.where(good, d, 1.0)
        us.append((qa * bw - aw * qb) / dd)
        ws.append((au * qb - qa * bu) / dd)
        oks.append(good)
    for (nu, nw, q), lok in zip(lines, line_ok):
        nrm2 = nu * nu + nw * nw
        nrm2 = np.where(nrm2 > 0, nrm2, 1.0)
        pu, pw = nu * q / nrm2, nw * q / nrm2
        du, dw = -nw, nu
        ux, uy = chx + m11 * pu + m12 * pw, chy + m21 * pu + m22 * pw
        wx, wy = m11 * du + m12 * dw, m21 * du + m22 * dw
        a2 = wx * wx + wy * wy
        b2 = 2 * (ux * wx + uy * wy)
        c2 = ux * ux + uy * uy - h_m * h_m
        disc = b2 * b2 - 4 * a2 * c2
        good = lok & (a2 > 1e-15) & (disc >= 0)
        sq = np.sqrt(np.where(good, disc, 0.0))
        a2s = np.where(good, a2, 1.0)
        for sgn in (-1.0, 1.0):
            lam = (-b2 + sgn * sq) / (2 * a2s)
            us.append(pu + lam * du)
            ws.append(pw + lam * dw)
            oks.append(good)
    dets = np.where(rank2, det, 1.0)
    yx = (m22 * 1.0 - m21 * -1.0) / dets
    yy = (-m12 * 1.0 + m11 * -1.0) / dets
    ny = np.hypot(yx, yy)
    ny = np.where(ny > 0, ny, 1.0)
    for sgn in (-1.0, 1.0):
        rx = sgn * h_m * yx / ny - chx
        ry = sgn * h_m * yy / ny - chy
        us.append((m22 * rx - m12 * ry) / dets)
        ws.append((-m21 * rx + m11 * ry) / dets)
        oks.append(rank2)
    U, W, OK = np.stack(us), np.stack(ws), np.stack(oks)
    tol = 1e-7
    feas = OK & (U >= sa["t0"] - tol) & (U <= sa["t1"] + tol)
    feas &= (W >= sb["t0"] - tol) & (W <= sb["t1"] + tol)
    rx = c[:, 0] + U * va[:, 0] - W * vb[:, 0]
    ry = c[:, 1] + U * va[:, 1] - W * vb[:, 1]
    rz = c[:, 2] + U * va[:, 2] - W * vb[:, 2]
    feas &= np.abs(rz) <= v_m + tol
    feas &= rx * rx + ry * ry <= h_m * h_m * (1 + 1e-9) + tol
    sig = U - W
    lo = np.where(feas, sig, np.inf).min(axis=0)
    hi = np.where(feas, sig, -np.inf).max(axis=0)
    hit = alive & (hi - lo > 1e-9) & (lo < buf_s) & (hi > -buf_s)
    return hit, lo, hi


def _random_segments(rng, k, t_base):
    p0 = rng.uniform(-60, 60, (k, 3))
    p1 = p0 + rng.uniform(-120, 120, (k, 3)) * rng.integers(0, 2, (k, 1))
    flat = rng.random(k) < 0.4                      # level flight (zconst cases)
    p1[flat, 2] = p0[flat, 2]
    t0 = t_base + rng.uniform(0, 30, k)
    t1 = t0 + rng.uniform(0.5, 30, k)
    return {"p0": p0, "p1": p1, "t0": t0, "t1": t1}


@pytest.mark.parametrize("seed", range(10))
def test_segment_pairs_exact_equals_the_line_loop(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 400))
    t_base = 1.8e9 if seed % 2 else 0.0
    sa, sb = _random_segments(rng, k, t_base), _random_segments(rng, k, t_base)
    sb["p0"][: k // 4] = sa["p0"][: k // 4]          # some coincident / parallel pairs
    sb["p1"][: k // 4] = sa["p1"][: k // 4]
    fast = _segment_pairs_exact(sa, sb, 30.0 * (1 - 1e-7), 10.0 * (1 - 1e-7), 5.0)
    slow = _segment_pairs_exact_loop(sa, sb, 30.0 * (1 - 1e-7), 10.0 * (1 - 1e-7), 5.0)
    for f, s in zip(fast, slow, strict=True):
        assert np.array_equal(f, s)
    assert fast[0].any() and not fast[0].all()


def test_accept_after_an_undelayed_lookup_enters_the_same_keys():
    trs, _ = generate(30, 7, area_m=2000.0, duration_s=900.0, n_hubs=2, pads_per_hub=3,
                      delivery_radius_m=900.0, max_delay_s=300.0)
    plain, looked = AcceptedIndex(), AcceptedIndex()
    for tr in trs:
        looked.near([tr], max_delay_s=0.0)       # the booking path: look up, then accept
        looked.accept(tr)
        plain.accept(tr)
    assert plain._bucket == looked._bucket and plain._long == looked._long
    assert plain._cell == looked._cell and plain._keys_of == looked._keys_of


@pytest.mark.parametrize("seed", range(4))
def test_query_keys_equal_the_expanded_pieces(seed):
    """``_query_keys`` (a query's distinct keys, without expanding each piece's
    window into its buckets) gives exactly the distinct keys of the expansion, on
    pieces crowding a few cells with overlapping, nested, touching and long windows,
    near t = 0 and at epoch times."""
    from skytwin.planner.deconflict import _query_keys
    rng = np.random.default_rng(seed)
    for origin in (0.0, 1.8e9):
        n = 400
        key = rng.integers(0, 12, n) * 1_000_003 + 7
        tlo = origin + rng.uniform(-3000.0, 3000.0, n)
        thi = tlo + rng.choice([0.0, 1.0, 59.9, 60.0, 700.0, 3840.0, 4000.0, 1e5], n)
        bucket_s, max_span = 60.0, 64
        got_k, got_b, cells, long_cells = _query_keys(key, tlo, thi, bucket_s, max_span)
        b0, b1 = np.floor(tlo / bucket_s), np.floor(thi / bucket_s)
        is_long = (b1 - b0) >= max_span
        want = sorted({(int(k), b) for k, a, z in zip(key[~is_long], b0[~is_long],
                                                         b1[~is_long])
                       for b in range(int(a), int(z) + 1)})
        assert list(zip(got_k.tolist(), got_b.tolist())) == want
        assert cells.tolist() == sorted(set(key[~is_long].tolist()))
        assert long_cells.tolist() == sorted(set(key[is_long].tolist()))
        assert is_long.any() and not is_long.all()
