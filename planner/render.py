"""Render a route as a PNG: map view (buildings, zones, route) and altitude profile.

matplotlib with the Agg backend (no screen needed). Buildings are drawn in the local
frame coloured by height; the route is drawn over them with its waypoints; zones are
hatched; with a ground-risk layer the people per km² are drawn under the buildings
(SORA band colours) and derived zones are outlined by category; the profile plots altitude AMSL against distance along the route together with
the ground and the highest roof near the route.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.patches import Polygon as MplPolygon  # noqa: E402

__all__ = ["render_route_png"]


def _patches(geom):
    polys = getattr(geom, "geoms", [geom])
    return [MplPolygon(np.asarray(p.exterior.coords)[:, :2], closed=True) for p in polys]


_CATEGORY_COLOUR = {"restricted": "red", "authorisation": "darkorange",
                    "altitude-limited": "purple", "warning": "gold"}


def _draw_risk(ax, fig, risk, period):
    from matplotlib.colors import BoundaryNorm, ListedColormap

    from skytwin.airspace.risk import BAND_NAMES
    bands = risk.bands(period).astype(float)
    nx, ny = bands.shape
    ext = (risk.x0_m, risk.x0_m + nx * risk.cell_m, risk.y0_m, risk.y0_m + ny * risk.cell_m)
    cmap = ListedColormap(["#f7fcf5", "#e5f5e0", "#fff7bc", "#fec44f", "#fe9929",
                           "#cc4c02"])
    im = ax.imshow(bands.T, origin="lower", extent=ext, cmap=cmap, alpha=0.55,
                   norm=BoundaryNorm(np.arange(0.5, 7.5), cmap.N), interpolation="none",
                   zorder=0)
    cb = fig.colorbar(im, ax=ax, shrink=0.7, ticks=range(1, 7))
    cb.ax.set_yticklabels([f"{BAND_NAMES[b]} /km²" for b in range(1, 7)])
    cb.set_label(f"SORA population band ({period})")


def render_route_png(twin, route, path, zones=(), margin_m: float = 150.0, risk=None,
                     derived=(), period: str = "day") -> None:
    """Write a two-panel PNG of ``route`` in ``twin`` to ``path``.

    ``risk`` (RiskLayer) draws the population bands under the map; ``derived``
    (DerivedZone list) outlines the derived zones, coloured by category.
    """
    xyz = route.xyz_m
    x0, y0 = xyz[:, 0].min() - margin_m, xyz[:, 1].min() - margin_m
    x1, y1 = xyz[:, 0].max() + margin_m, xyz[:, 1].max() + margin_m
    view = shapely.box(x0, y0, x1, y1)
    idx = twin.index.query(view)
    fig, (ax, axp) = plt.subplots(1, 2, figsize=(14, 6.5),
                                  gridspec_kw={"width_ratios": [1.3, 1]})
    if risk is not None:
        _draw_risk(ax, fig, risk, period)
    seen_cat = set()
    for d in derived:
        lon, lat = np.array(d.zone.polygon).T
        x, y = twin.frame.to_local(lon, lat)
        c = _CATEGORY_COLOUR.get(d.category, "red")
        label = None if d.category in seen_cat else f"derived zone: {d.category}"
        seen_cat.add(d.category)
        ax.add_patch(MplPolygon(np.column_stack([x, y]), closed=True, fill=False,
                                edgecolor=c, lw=1.8, ls="--", label=label, zorder=3))
    patches, heights, unknown = [], [], []
    for n in idx:
        b = twin.buildings[n]
        ps = _patches(b.footprint)
        if b.height_source == "unknown":  # blocked to the ceiling: not "120 m tall"
            unknown += ps
            continue
        patches += ps
        heights += [b.top_m - b.ground_m] * len(ps)
    if patches:
        pc = PatchCollection(patches, cmap="viridis", edgecolor="k", linewidth=0.2)
        pc.set_array(np.asarray(heights))
        ax.add_collection(pc)
        fig.colorbar(pc, ax=ax, label="building height above ground [m]", shrink=0.7)
    if unknown:
        ax.add_collection(PatchCollection(unknown, facecolor="0.75", edgecolor="k",
                                          hatch="xx", linewidth=0.2))
        ax.add_patch(plt.Rectangle((0, 0), 0, 0, facecolor="0.75", hatch="xx",
                                   edgecolor="k", label="height unknown (blocked)"))
    for z in zones:
        if getattr(z, "centre_m", None) is not None:
            ax.add_patch(plt.Circle(z.centre_m, z.radius_m, fill=False, hatch="//",
                                    color="red", lw=1.5))
        else:
            for p in _patches(z.shape):
                p.set(fill=False, hatch="//", color="red", lw=1.5)
                ax.add_patch(p)
    ax.plot(xyz[:, 0], xyz[:, 1], "-", color="orangered", lw=2.2, label="route")
    ax.plot(xyz[:, 0], xyz[:, 1], "o", color="orangered", ms=4)
    ax.plot(*xyz[0, :2], "^", color="green", ms=11, label="start")
    ax.plot(*xyz[-1, :2], "s", color="blue", ms=10, label="goal")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("x east [m] (local frame)")
    ax.set_ylabel("y north [m]")
    ax.legend(loc="upper right")
    title = (f"route {route.length_m:.0f} m, {route.duration_s:.0f} s, "
             f"clearance {route.clearance_m:g} m")
    ex = getattr(route, "exposure", None)
    if ex and "people_overflown" in ex:
        title += (f"\n{ex['people_overflown']:.0f} people/km²·km overflown, worst band "
                  f"{ex['worst_band_name']}, risk weight {ex['risk_weight']:g}")
    ax.set_title(title)
    # profile
    seg = np.linalg.norm(np.diff(xyz[:, :2], axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    ss = np.linspace(0.0, s[-1], max(2, int(s[-1] / (0.5 * twin.grid.dx_m)) + 1))
    xs = np.interp(ss, s, xyz[:, 0])
    ys = np.interp(ss, s, xyz[:, 1])
    g = twin.grid
    i = np.clip(((xs - g.x0_m) // g.dx_m).astype(int), 0, g.nx - 1)
    j = np.clip(((ys - g.y0_m) // g.dx_m).astype(int), 0, g.ny - 1)
    axp.fill_between(ss, twin.ground_m[i, j], twin.top_m[i, j], color="0.6",
                     label="roofs under the route")
    axp.plot(ss, twin.clear_top_m[i, j], color="0.3", lw=0.8, ls="--",
             label="roof + clearance (planning field)")
    axp.plot(ss, twin.ground_m[i, j], color="saddlebrown", lw=1, label="ground")
    axp.plot(s, xyz[:, 2], "-o", color="orangered", ms=3, label="route altitude")
    axp.set_xlabel("distance along route [m]")
    axp.set_ylabel("altitude [m AMSL]")
    axp.legend(loc="upper right", fontsize=8)
    axp.set_title("altitude profile")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_twin_png(twin, path) -> None:
    """Write a PNG of the twin: roof heights above ground and the clearance field."""
    g = twin.grid
    ext = (g.x0_m, g.x1_m, g.y0_m, g.y1_m)
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.5))
    for ax, field, title in ((axes[0], twin.top_m - twin.ground_m,
                              "building height above ground [m]"),
                             (axes[1], twin.clear_top_m - twin.ground_m,
                              f"protected height (roof + {twin.clearance_m:g} m, "
                              f"inflated by {twin.clearance_m:g} m) [m]")):
        im = ax.imshow(field.T, origin="lower", extent=ext, cmap="magma", interpolation="none")
        fig.colorbar(im, ax=ax, shrink=0.75)
        ax.set_title(title)
        ax.set_xlabel("x east [m] (local frame)")
        ax.set_ylabel("y north [m]")
    fig.suptitle(f"SkyTwin: {len(twin.buildings)} buildings, {g.nx}x{g.ny}x{g.nz} voxels "
                 f"of {g.dx_m:g} m x {g.dz_m:g} m")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def render_fleet_png(twin, trajectories, conflict_points_xy, path) -> None:
    """Write a PNG of a fleet over the twin, with the conflicts found before resolution."""
    g = twin.grid
    fig, ax = plt.subplots(figsize=(9, 10))
    ax.imshow((twin.top_m - twin.ground_m).T, origin="lower", cmap="Greys",
              extent=(g.x0_m, g.x1_m, g.y0_m, g.y1_m), interpolation="none", alpha=0.6)
    for tr in trajectories:
        ax.plot(tr.xyz_m[:, 0], tr.xyz_m[:, 1], "-", lw=0.6, alpha=0.7)
    if len(conflict_points_xy):
        pts = np.asarray(conflict_points_xy)
        ax.plot(pts[:, 0], pts[:, 1], "x", color="red", ms=6,
                label=f"{len(pts)} conflicts before resolution")
        ax.legend(loc="upper right")
    ax.set_title(f"{len(trajectories)} resolved flights (none closer than the minima)")
    ax.set_xlabel("x east [m]")
    ax.set_ylabel("y north [m]")
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
