"""``ServiceCore.warm_up`` leaves no numba kernel of the planning and booking paths to
compile in the first requests (a fresh server with an empty numba cache otherwise paid
seconds in its first booking: RESULTS scale part 10, cold start).

Checked through numba itself: the compiled signatures of every jitted function of the
package, before and after a first plan and booking (with a zone on the route, so the
zone kernels are needed), must be the same.
"""

from __future__ import annotations

import sys
import time

from skytwin.airspace.zones import Altitude, Circle, Zone
from skytwin.planner.route import RouteRequest
from skytwin.server.service import Caller, ServiceCore
from skytwin.server.store import Store
from tests.grpc_fixtures import helsinki_twin

OP = Caller("a", "operator", "op-a")
REG = Caller("r", "regulator")
META = {"priority": 1.0, "max_delay_s": 600.0, "speeds": {}}


def _signatures() -> dict:
    from numba.core.registry import CPUDispatcher
    out = {}
    for name, mod in list(sys.modules.items()):
        if not name.startswith("skytwin."):
            continue
        for attr, f in list(vars(mod).items()):
            if isinstance(f, CPUDispatcher):
                out[f"{name}.{attr}"] = len(f.signatures)
    return out


def test_first_plan_and_booking_compile_nothing_after_warm_up(tmp_path):
    twin, ref = helsinki_twin()
    core = ServiceCore(twin, Store(tmp_path / "w.db"), twin_ref=ref)
    try:
        core.warm_up()
        before = _signatures()
        assert len(before) > 20           # the package's kernels are seen
        core.create_zone(REG, Zone(id="z1", circle=Circle(24.9465, 60.1696, 40.0),
                                   lower=Altitude(0, "AGL"), upper=Altitude(60, "AGL")))
        t0 = float(int(time.time()) + 7200)
        req = RouteRequest((24.94030, 60.17150), (24.95240, 60.16760), depart_s=t0)
        for k in range(2):
            core.submit_flight(OP, f"w-{k}", req, META)
        after = _signatures()
        grew = {k: (before.get(k, 0), v) for k, v in after.items() if v != before.get(k, 0)}
        assert not grew, f"compiled after warm_up: {grew}"
    finally:
        core.close()
