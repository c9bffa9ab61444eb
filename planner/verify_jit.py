"""The focus verifier compiled: :func:`planner.verify.verify` with ``focus`` (and the
focus prefilter), step for step in numba.

A booking checks one new flight against the few accepted flights near it. In numpy
that is some two hundred small array operations (about a millisecond of the booking's
critical section); here it is one call. The method is the module docstring's of
:mod:`planner.verify`, unchanged, and shares no code with :mod:`planner.conflicts`:

1. focus prefilter: the other flights' sampling windows, from the focus flights'
   pieces and their grown boxes (``_near_focus``);
2. sampling on the common clock, positions exactly as ``numpy.interp`` gives them;
3. the screen: two samples at the same tick, of two flights (one of them a focus
   flight), within ``Hs`` on each horizontal axis and of ``Vs`` vertically: exactly the
   pairs the k-d tree's Chebyshev query returns, since samples at different ticks lie
   ``10 (span + Hs)`` apart on its fourth axis;
4. the exact check of every screened pair's segment pairs (``_segment_pairs_exact``),
   the same floating-point operations in the same order, one pair at a time.

Every quantity equals the numpy path's except ``near_t_s`` (a sampled moment where the
pair was close: here the earliest, there whichever the tree returned first); the tests
compare both paths on random fleets near t = 0 and at Unix epoch times.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from skytwin.airspace._jit import JIT

__all__ = ["focus_verify"]

# the 15 pairs of the six boundary lines, as ``itertools.combinations(range(6), 2)``
_PAIR_I = (0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4)
_PAIR_J = (1, 2, 3, 4, 5, 2, 3, 4, 5, 3, 4, 5, 4, 5, 5)


@njit(**JIT)
def _kept_segments(xyz, ts, off):
    """Segments of positive duration of every flight: ``(soff, p0, p1, t0, t1)``,
    flight ``f``'s at ``soff[f]:soff[f + 1]``, in time order (``verify._segments``)."""
    n = off.size - 1
    soff = np.zeros(n + 1, np.int64)
    for f in range(n):
        c = 0
        for j in range(off[f], off[f + 1] - 1):
            if ts[j + 1] > ts[j]:
                c += 1
        soff[f + 1] = soff[f] + c
    m = soff[n]
    p0 = np.empty((m, 3))
    p1 = np.empty((m, 3))
    t0 = np.empty(m)
    t1 = np.empty(m)
    s = 0
    for f in range(n):
        for j in range(off[f], off[f + 1] - 1):
            if ts[j + 1] > ts[j]:
                for d in range(3):
                    p0[s, d] = xyz[j, d]
                    p1[s, d] = xyz[j + 1, d]
                t0[s] = ts[j]
                t1[s] = ts[j + 1]
                s += 1
    return soff, p0, p1, t0, t1


@njit(**JIT)
def _covered_twice(lo, hi):
    """Times covered by at least two of the closed intervals ``[lo, hi]`` (merged,
    sorted): ``verify._covered_twice`` (at equal times, starts before ends)."""
    n = lo.size
    s = np.sort(lo)
    e = np.sort(hi)
    out_lo = np.empty(n)
    out_hi = np.empty(n)
    k = 0
    c = 0
    prev = False
    i = 0
    j = 0
    while i < n or j < n:
        if j == n or (i < n and s[i] <= e[j]):
            t = s[i]
            c += 1
            i += 1
        else:
            t = e[j]
            c -= 1
            j += 1
        two = c >= 2
        if two and not prev:
            out_lo[k] = t
        elif prev and not two:
            out_hi[k] = t
            k += 1
        prev = two
    return out_lo[:k], out_hi[:k]


@njit(**JIT)
def _interp(x, ts, vs, a, b):
    """``numpy.interp(x, ts[a:b], vs[a:b])`` for one ``x``, the same arithmetic
    (numpy's ``arr_interp``: the last knot at or before ``x``, exact at a knot)."""
    if x < ts[a]:
        return vs[a]
    if x > ts[b - 1]:
        return vs[b - 1]
    lo, hi = a, b                     # last j with ts[j] <= x
    while lo < hi:
        mid = (lo + hi) >> 1
        if x >= ts[mid]:
            lo = mid + 1
        else:
            hi = mid
    j = lo - 1
    if j == b - 1 or ts[j] == x:
        return vs[j]
    slope = (vs[j + 1] - vs[j]) / (ts[j + 1] - ts[j])
    r = slope * (x - ts[j]) + vs[j]
    if math.isnan(r):
        r = slope * (x - ts[j + 1]) + vs[j + 1]
        if math.isnan(r) and vs[j] == vs[j + 1]:
            r = vs[j]
    return r


@njit(**JIT)
def _near_rows(soff, p0, p1, t0, t1, in_focus, h_m, v_m, b, pad, piece_s, max_pieces,
               eps_t, eps_m, fill, r_own, r_lo, r_hi):
    """The focus prefilter's windows ``(own, ca - pad, cb + pad)`` of the other
    flights (``verify._near_focus`` before its merge); counts them, and writes them
    when ``fill``."""
    n = soff.size - 1
    k = 0
    gh = h_m + eps_m
    gv = v_m + eps_m
    gt = b + eps_t
    for f in range(n):
        if not in_focus[f] or soff[f + 1] == soff[f]:
            continue
        npc = 0
        for s in range(soff[f], soff[f + 1]):
            q = math.ceil((t1[s] - t0[s]) / piece_s)
            npc += int(min(max(q, 1.0), max_pieces))
        pa = np.empty((npc, 3))
        pb = np.empty((npc, 3))
        ta_w = np.empty(npc)
        tb_w = np.empty(npc)
        c = 0
        for s in range(soff[f], soff[f + 1]):
            dur = t1[s] - t0[s]
            cnt = int(min(max(math.ceil(dur / piece_s), 1.0), max_pieces))
            for kk in range(cnt):
                fa = kk / cnt
                fb = (kk + 1) / cnt
                for d in range(3):
                    dd = p1[s, d] - p0[s, d]
                    pa[c, d] = p0[s, d] + fa * dd
                    pb[c, d] = p0[s, d] + fb * dd
                ta_w[c] = (t0[s] + fa * dur) - gt
                tb_w[c] = (t0[s] + fb * dur) + gt
                c += 1
        for g in range(n):
            if in_focus[g]:
                continue
            for s in range(soff[g], soff[g + 1]):
                first = np.searchsorted(tb_w, t0[s], "left")
                last = np.searchsorted(ta_w, t1[s], "right")
                for pi in range(first, last):
                    ca = max(t0[s], ta_w[pi])
                    cb = min(t1[s], tb_w[pi])
                    if not ca <= cb:
                        continue
                    dur = t1[s] - t0[s]
                    fa = (ca - t0[s]) / dur
                    fb = (cb - t0[s]) / dur
                    near = True
                    for d in range(3):
                        dd = p1[s, d] - p0[s, d]
                        qa = p0[s, d] + fa * dd
                        qb = p0[s, d] + fb * dd
                        grow = gv if d == 2 else gh
                        lo_box = min(pa[pi, d], pb[pi, d]) - grow
                        hi_box = max(pa[pi, d], pb[pi, d]) + grow
                        if not (min(qa, qb) <= hi_box and max(qa, qb) >= lo_box):
                            near = False
                            break
                    if near:
                        if fill:
                            r_own[k] = g
                            r_lo[k] = ca - pad
                            r_hi[k] = cb + pad
                        k += 1
    return k


@njit(**JIT)
def _sampling_windows(n, in_focus, span_lo, span_hi, both_lo, both_hi, r_own, r_lo,
                      r_hi):
    """Every flight's sampling windows ``(own, lo, hi)``: a focus flight's span within
    the times two flights fly (``verify._windows``), another's merged prefilter
    windows clipped to its span (``_merge``, ``_clip_windows``)."""
    cap = n * (both_lo.size + 1) + r_own.size + 1
    w_own = np.empty(cap, np.int64)
    w_lo = np.empty(cap)
    w_hi = np.empty(cap)
    k = 0
    for i in range(n):
        if in_focus[i]:
            for q in range(both_lo.size):
                lo = max(both_lo[q], span_lo[i])
                hi = min(both_hi[q], span_hi[i])
                if hi >= lo:
                    w_own[k], w_lo[k], w_hi[k] = i, lo, hi
                    k += 1
    order = np.argsort(r_lo, kind="mergesort")
    order = order[np.argsort(r_own[order], kind="mergesort")]   # by flight, then start
    q = 0
    while q < order.size:
        g = r_own[order[q]]
        cur_lo = r_lo[order[q]]
        cur_hi = r_hi[order[q]]
        q += 1
        while True:
            more = q < order.size and r_own[order[q]] == g
            if more and not r_lo[order[q]] > cur_hi:
                cur_hi = max(cur_hi, r_hi[order[q]])
                q += 1
                continue
            lo = max(cur_lo, span_lo[g])
            hi = min(cur_hi, span_hi[g])
            if hi >= lo:
                w_own[k], w_lo[k], w_hi[k] = g, lo, hi
                k += 1
            if not more:
                break
            cur_lo = r_lo[order[q]]
            cur_hi = r_hi[order[q]]
            q += 1
    return w_own[:k], w_lo[:k], w_hi[:k]


@njit(**JIT, error_model="numpy")
def _exact_pair(p0, p1, t0, t1, sa, sb, h_m, v_m, buf_s):
    """``verify._segment_pairs_exact`` for segment ``sa`` against ``sb``: ``(hit, lo,
    hi)``, by the same floating-point operations in the same order (candidate points
    in another order: only their minimum and maximum are kept, which is exact).
    Division as numpy's (``error_model="numpy"``): a segment of a few ulps at times
    near zero can shrink to no duration once re-based on the pair's earlier start, and
    then gives infinities and NaNs as in the numpy code, not an exception."""
    ref = min(t0[sa], t0[sb])
    a0, a1 = t0[sa] - ref, t1[sa] - ref
    b0, b1 = t0[sb] - ref, t1[sb] - ref
    da, db = a1 - a0, b1 - b0
    vax = (p1[sa, 0] - p0[sa, 0]) / da
    vay = (p1[sa, 1] - p0[sa, 1]) / da
    vaz = (p1[sa, 2] - p0[sa, 2]) / da
    vbx = (p1[sb, 0] - p0[sb, 0]) / db
    vby = (p1[sb, 1] - p0[sb, 1]) / db
    vbz = (p1[sb, 2] - p0[sb, 2]) / db
    cx = p0[sa, 0] - vax * a0 - (p0[sb, 0] - vbx * b0)
    cy = p0[sa, 1] - vay * a0 - (p0[sb, 1] - vby * b0)
    cz = p0[sa, 2] - vaz * a0 - (p0[sb, 2] - vbz * b0)
    zconst = vaz == 0 and vbz == 0
    gu, gw = vaz, -vbz
    LU = (1.0, 1.0, 0.0, 0.0, gu, gu)
    LW = (0.0, 0.0, 1.0, 1.0, gw, gw)
    LQ = (a0, a1, b0, b1, v_m - cz, -v_m - cz)
    LOK = (True, True, True, True, not zconst, not zconst)
    m11, m12, m21, m22 = vax, -vbx, vay, -vby
    chx, chy = cx, cy
    det = m11 * m22 - m12 * m21
    mx = max(max(max(abs(m11), abs(m12)), abs(m21)), abs(m22))
    scale = max(1.0, mx * mx)
    rank2 = abs(det) > 1e-12 * scale
    rank0 = m11 == 0 and m12 == 0 and m21 == 0 and m22 == 0
    alive = not (zconst and not (abs(cz) < v_m))
    alive = alive and not (rank0 and not (chx * chx + chy * chy < h_m * h_m))
    rank1 = not rank2 and not rank0
    na = math.hypot(m11, m21)
    nb = math.hypot(m12, m22)
    ex = m11 if na >= nb else m12
    ey = m21 if na >= nb else m22
    nn = math.hypot(ex, ey)
    if not nn > 0:
        nn = 1.0
    cperp = (chx * ey - chy * ex) / nn
    alive = alive and not (rank1 and (cperp * cperp >= h_m * h_m))
    if not alive:
        return False, 0.0, 0.0
    tol = 1e-7
    lim_h = h_m * h_m * (1 + 1e-9) + tol
    lim_v = v_m + tol
    lo = np.inf
    hi = -np.inf
    # candidate points: the 15 line intersections, the 12 line-conic ones, the 2
    # tangent points; each kept when feasible (same test as the numpy code)
    for c in range(29):
        if c < 15:
            i, j = _PAIR_I[c], _PAIR_J[c]
            if not (LOK[i] and LOK[j]):
                continue
            au, aw, qa = LU[i], LW[i], LQ[i]
            bu, bw, qb = LU[j], LW[j], LQ[j]
            d = au * bw - aw * bu
            if not abs(d) > 1e-12:
                continue
            u = (qa * bw - aw * qb) / d
            w = (au * qb - qa * bu) / d
        elif c < 27:
            ln = (c - 15) % 6
            sgn = -1.0 if c < 21 else 1.0
            if not LOK[ln]:
                continue
            nu, nw, q = LU[ln], LW[ln], LQ[ln]
            nrm2 = nu * nu + nw * nw
            if not nrm2 > 0:
                nrm2 = 1.0
            pu, pw = nu * q / nrm2, nw * q / nrm2
            du, dw = -nw, nu
            ux = chx + m11 * pu + m12 * pw
            uy = chy + m21 * pu + m22 * pw
            wx = m11 * du + m12 * dw
            wy = m21 * du + m22 * dw
            a2 = wx * wx + wy * wy
            b2 = 2 * (ux * wx + uy * wy)
            c2 = ux * ux + uy * uy - h_m * h_m
            disc = b2 * b2 - 4 * a2 * c2
            if not (a2 > 1e-15 and disc >= 0):
                continue
            lam = (-b2 + sgn * math.sqrt(disc)) / (2 * a2)
            u = pu + lam * du
            w = pw + lam * dw
        else:
            if not rank2:
                continue
            sgn = -1.0 if c == 27 else 1.0
            yx = (m22 * 1.0 - m21 * -1.0) / det
            yy = (-m12 * 1.0 + m11 * -1.0) / det
            ny = math.hypot(yx, yy)
            if not ny > 0:
                ny = 1.0
            rx = sgn * h_m * yx / ny - chx
            ry = sgn * h_m * yy / ny - chy
            u = (m22 * rx - m12 * ry) / det
            w = (-m21 * rx + m11 * ry) / det
        if not (u >= a0 - tol and u <= a1 + tol and w >= b0 - tol and w <= b1 + tol):
            continue
        rx = cx + u * vax - w * vbx
        ry = cy + u * vay - w * vby
        rz = cz + u * vaz - w * vbz
        if not (abs(rz) <= lim_v and rx * rx + ry * ry <= lim_h):
            continue
        sig = u - w
        lo = min(lo, sig)
        hi = max(hi, sig)
    hit = (hi - lo > 1e-9) and (lo < buf_s) and (hi > -buf_s)
    return hit, lo, hi


@njit(**JIT)
def focus_verify(xyz, ts, off, in_focus, h_m, v_m, h_x, v_x, b, dt_s, piece_s,
                 max_pieces, eps_t, eps_m):
    """The focus verifier (module docstring) on flights ``f`` with points
    ``xyz[off[f]:off[f + 1]]`` at times ``ts[...]``: ``(samples, pair_a, pair_b,
    near_t, hit, lo, hi)`` over the screened flight pairs (``pair_a < pair_b``, sorted).
    ``h_m, v_m``: the minima; ``h_x, v_x``: those of the exact test (shrunk by
    ``RTOL``)."""
    n = off.size - 1
    soff, p0, p1, t0, t1 = _kept_segments(xyz, ts, off)
    vh = 0.0
    vv = 0.0
    for s in range(t0.size):          # the fleet's largest speeds
        dt = t1[s] - t0[s]
        vh = max(vh, math.hypot(p1[s, 0] - p0[s, 0], p1[s, 1] - p0[s, 1]) / dt)
        vv = max(vv, abs(p1[s, 2] - p0[s, 2]) / dt)
    hs = h_m + vh * (dt_s + b)
    vs = v_m + vv * (dt_s + b)
    pad = b + 2.0 * dt_s
    t_ref = np.inf
    span_lo = np.empty(n)
    span_hi = np.empty(n)
    for f in range(n):
        t_ref = min(t_ref, ts[off[f]])
        span_lo[f] = ts[off[f]] - pad
        span_hi[f] = ts[off[f + 1] - 1] + pad
    both_lo, both_hi = _covered_twice(span_lo, span_hi)
    e = np.empty(0, np.int64)
    ef = np.empty(0)
    m = _near_rows(soff, p0, p1, t0, t1, in_focus, h_m, v_m, b, pad, piece_s,
                   max_pieces, eps_t, eps_m, False, e, ef, ef)
    r_own = np.empty(m, np.int64)
    r_lo = np.empty(m)
    r_hi = np.empty(m)
    _near_rows(soff, p0, p1, t0, t1, in_focus, h_m, v_m, b, pad, piece_s, max_pieces,
               eps_t, eps_m, True, r_own, r_lo, r_hi)
    w_own, w_lo, w_hi = _sampling_windows(n, in_focus, span_lo, span_hi, both_lo,
                                          both_hi, r_own, r_lo, r_hi)
    # --- samples on the common clock
    k0 = np.empty(w_own.size, np.int64)
    k1 = np.empty(w_own.size, np.int64)
    total = 0
    for q in range(w_own.size):
        k0[q] = int(math.floor((w_lo[q] - t_ref) / dt_s))
        k1[q] = int(math.ceil((w_hi[q] - t_ref) / dt_s))
        total += k1[q] - k0[q] + 1
    sx = np.empty(total)
    sy = np.empty(total)
    sz = np.empty(total)
    sown = np.empty(total, np.int64)
    stk = np.empty(total, np.int64)
    zf = hs / vs
    s = 0
    for q in range(w_own.size):
        f = w_own[q]
        a, bb = off[f], off[f + 1]
        for k in range(k0[q], k1[q] + 1):
            t = t_ref + k * dt_s
            sx[s] = _interp(t, ts, xyz[:, 0], a, bb)
            sy[s] = _interp(t, ts, xyz[:, 1], a, bb)
            sz[s] = _interp(t, ts, xyz[:, 2], a, bb) * zf
            sown[s] = f
            stk[s] = k
            s += 1
    # --- the screen: same tick, two flights (one in focus), Chebyshev within hs
    order = np.argsort(stk, kind="mergesort")
    cap = 16
    codes = np.empty(cap, np.int64)
    ticks = np.empty(cap, np.int64)
    nc = 0
    g0 = 0
    while g0 < total:
        g1 = g0 + 1
        while g1 < total and stk[order[g1]] == stk[order[g0]]:
            g1 += 1
        for x in range(g0, g1):
            i = order[x]
            fi = sown[i]
            if not in_focus[fi]:
                continue
            for y in range(g0, g1):
                j = order[y]
                fj = sown[j]
                if fj == fi or (in_focus[fj] and fj < fi):
                    continue
                if max(abs(sx[i] - sx[j]), abs(sy[i] - sy[j]), abs(sz[i] - sz[j])) <= hs:
                    if nc == cap:
                        cap *= 2
                        codes2 = np.empty(cap, np.int64)
                        ticks2 = np.empty(cap, np.int64)
                        codes2[:nc] = codes[:nc]
                        ticks2[:nc] = ticks[:nc]
                        codes, ticks = codes2, ticks2
                    codes[nc] = min(fi, fj) * n + max(fi, fj)
                    ticks[nc] = stk[i]
                    nc += 1
        g0 = g1
    codes = codes[:nc]
    ticks = ticks[:nc]
    o = np.argsort(ticks, kind="mergesort")
    o = o[np.argsort(codes[o], kind="mergesort")]     # by pair, then earliest tick
    npairs = 0
    for x in range(nc):
        if x == 0 or codes[o[x]] != codes[o[x - 1]]:
            npairs += 1
    pair_a = np.empty(npairs, np.int64)
    pair_b = np.empty(npairs, np.int64)
    near_t = np.empty(npairs)
    hit = np.zeros(npairs, np.bool_)
    lo = np.full(npairs, np.inf)
    hi = np.full(npairs, -np.inf)
    q = 0
    for x in range(nc):
        if x == 0 or codes[o[x]] != codes[o[x - 1]]:
            pair_a[q] = codes[o[x]] // n
            pair_b[q] = codes[o[x]] % n
            near_t[q] = t_ref + ticks[o[x]] * dt_s
            q += 1
    # --- exact check of every screened pair's segment pairs (overlapping within b)
    for q in range(npairs):
        fa, fb = pair_a[q], pair_b[q]
        for sa in range(soff[fa], soff[fa + 1]):
            for sb in range(soff[fb], soff[fb + 1]):
                if not (t0[sa] <= t1[sb] + b and t0[sb] <= t1[sa] + b):
                    continue
                h, l_, u_ = _exact_pair(p0, p1, t0, t1, sa, sb, h_x, v_x, b)
                if h:
                    hit[q] = True
                    lo[q] = min(lo[q], l_)
                    hi[q] = max(hi[q], u_)
    return total, pair_a, pair_b, near_t, hit, lo, hi
