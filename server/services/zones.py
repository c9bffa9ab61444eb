"""ZoneService: no-fly volumes (regulators write; every authenticated caller reads).

Fields are checked against the server's limits before any work (server.convert); the
band against the ground and the zone count by the core (ServiceCore.check_zone).

Derived zones (issue 13, :mod:`server.ground`) are listed, read and exported like the
regulators' zones, marked with ``Zone.derived`` (provenance, category, override):
ListZones and ExportEd269 include those in force unless ``exclude_derived``, GetZone
finds one by its ``DZ-...`` id, QueryZones includes those meeting the box and band.
They are not created, updated or deleted like a regulator's zone: a regulator changes
one with OverrideDerivedZone (disable, category, band; persisted, a Watch event);
CreateZone/UpdateZone/DeleteZone on a derived id is INVALID_ARGUMENT saying so.
QueryDerivedZones lists them by box or grid code (with the disabled ones on request).
"""

from __future__ import annotations

from skytwin.server import convert
from skytwin.server.auth import current_caller
from skytwin.server.limits import check_id, check_range, check_text
from skytwin.server.service import RequestTooLargeError
from skytwin.server.services._base import Base
from skytwin.v1 import zones_pb2 as pb
from skytwin.v1 import zones_pb2_grpc as rpc

__all__ = ["ZoneServicer"]


class ZoneServicer(Base, rpc.ZoneServiceServicer):
    def _zones_answer(self, zones):
        mx = self.core.limits.max_query_zones
        if len(zones) > mx:
            raise RequestTooLargeError(f"the answer holds {len(zones)} zones, more than "
                                       f"the limit of {mx}; narrow the query")
        return [convert.zone_to_proto(z) for z in zones]

    async def CreateZone(self, request, context):
        caller = current_caller()
        zone = convert.zone_from_proto(request.zone, self.core.limits)
        self._not_derived(zone.id, "create")
        zone, affected = await self.run_fast(self.core.create_zone, caller, zone)
        return pb.CreateZoneResponse(zone=convert.zone_to_proto(zone),
                                     affected_flight_ids=affected)

    def _not_derived(self, zone_id, what):
        if zone_id in self.core.ground:
            from skytwin.airspace.errors import ZoneError
            raise ZoneError(
                f"zone {zone_id} is derived from the city model: it cannot be {what}d "
                "like a regulator's zone; use OverrideDerivedZone (enabled=false "
                "disables it)")

    async def UpdateZone(self, request, context):
        caller = current_caller()
        zone = convert.zone_from_proto(request.zone, self.core.limits)
        self._not_derived(zone.id, "update")
        zone, affected = await self.run_fast(self.core.update_zone, caller, zone)
        return pb.UpdateZoneResponse(zone=convert.zone_to_proto(zone),
                                     affected_flight_ids=affected)

    async def DeleteZone(self, request, context):
        caller = current_caller()
        check_id(self.core.limits, "zone_id", request.zone_id)
        self._not_derived(request.zone_id, "delete")
        zone = await self.run_fast(self.core.delete_zone, caller, request.zone_id)
        return pb.DeleteZoneResponse(zone=convert.zone_to_proto(zone))

    async def GetZone(self, request, context):
        current_caller()
        check_id(self.core.limits, "zone_id", request.zone_id)
        if request.zone_id in self.core.ground:
            return pb.GetZoneResponse(zone=convert.zone_to_proto(
                self.core.ground.get(request.zone_id)))
        return pb.GetZoneResponse(zone=convert.zone_to_proto(self.core.get_zone(request.zone_id)))

    async def ListZones(self, request, context):
        current_caller()
        zones = self.core.list_zones()
        if not request.exclude_derived:
            zones = [*zones, *self.core.ground.zones()]
        return pb.ListZonesResponse(zones=self._zones_answer(zones))

    async def QueryZones(self, request, context):
        current_caller()
        lim = self.core.limits
        box = convert.box_from_proto(request.box, required=False)
        lo, hi = ((request.z_lo_amsl_m, request.z_hi_amsl_m) if request.has_band
                  else (None, None))
        if request.has_band:
            for name, v in (("z_lo_amsl_m", lo), ("z_hi_amsl_m", hi)):
                check_range(name, v, -lim.max_abs_altitude_m, lim.max_abs_altitude_m, "m")
        zones = await self.run_fast(self.core.query_zones, box, lo, hi,
                                    convert.opt_time(request, "start_time"),
                                    convert.opt_time(request, "end_time"))
        derived = await self.run_fast(self._derived_in, box, lo, hi)
        return pb.QueryZonesResponse(zones=self._zones_answer([*zones, *derived]))

    def _derived_in(self, box, lo, hi):
        """Derived zones in force meeting a box and an AMSL band (always active)."""
        from skytwin.airspace.zones import ZoneLayer
        layer = ZoneLayer(self.core.twin.frame, self.core.ground.zones())
        b = box if box is not None else self.core.twin.bounds_wgs84()
        g_lo = float(self.core.twin.ground_m.min())
        g_hi = float(self.core.twin.ground_m.max())
        if lo is not None:
            lo = lo - (g_hi - g_lo)
        ids = {z.id for z in layer.in_box(*b, z_lo_m=lo, z_hi_m=hi, ground_m=g_lo)}
        return [z for z in self.core.ground.zones() if z.id in ids]

    async def ImportEd269(self, request, context):
        caller = current_caller()
        zones, affected = await self.run_query(caller, self.core.import_ed269, caller,
                                               request.ed269_json, request.replace_existing)
        return pb.ImportEd269Response(zones=[convert.zone_to_proto(z) for z in zones],
                                      affected_flight_ids=affected)

    async def ExportEd269(self, request, context):
        caller = current_caller()
        text = await self.run_query(caller, self.core.export_ed269, request.country)
        if not request.exclude_derived and len(self.core.ground):
            text = await self.run_query(caller, self._with_derived, text,
                                        request.country or "XXX")
        return pb.ExportEd269Response(ed269_json=text)

    def _with_derived(self, text, country):
        """The core's ED-269 document plus the derived zones in force (restriction from
        the category, provenance in ``message``: :func:`airspace.derived.derived_ed269`)."""
        import json

        from skytwin.airspace.derived import derived_ed269
        doc = json.loads(text)
        recs = self.core.ground.zones()
        extra = derived_ed269([_as_derived(r) for r in recs], country=country)
        doc.setdefault("features", []).extend(extra["features"])
        return json.dumps(doc)

    async def QueryDerivedZones(self, request, context):
        current_caller()
        lim = self.core.limits
        box, code = self._area(request)
        check_text(lim, "category", request.category)
        zones = await self.run_fast(self.core.ground.query_zones, box, code,
                                    request.include_disabled, request.category)
        counts: dict = {}
        for z in zones:
            counts[z.derived.category] = counts.get(z.derived.category, 0) + 1
        return pb.QueryDerivedZonesResponse(zones=self._zones_answer(zones), counts=counts,
                                            rules=self.core.ground.rules_name)

    async def OverrideDerivedZone(self, request, context):
        caller = current_caller()
        lim = self.core.limits
        check_id(lim, "zone_id", request.zone_id)
        check_text(lim, "reason", request.reason)
        check_text(lim, "category", request.category)
        lower = upper = None
        if request.HasField("lower") or request.HasField("upper"):
            from skytwin.airspace.zones import Altitude
            if not (request.HasField("lower") and request.HasField("upper")):
                raise ValueError("give both lower and upper, or neither")
            for name in ("lower", "upper"):
                check_range(f"{name}.value_m", getattr(request, name).value_m,
                            -lim.max_abs_altitude_m, lim.max_abs_altitude_m, "m")
            lower = Altitude(request.lower.value_m,
                             convert.reference_from_proto(request.lower.reference, "lower"))
            upper = Altitude(request.upper.value_m,
                             convert.reference_from_proto(request.upper.reference, "upper"))
        from skytwin.server.ground import override_derived_zone
        rec, affected = await self.run_fast(
            override_derived_zone, self.core, caller, request.zone_id,
            enabled=request.enabled if request.HasField("enabled") else None,
            category=request.category or None, lower=lower, upper=upper,
            reason=request.reason, reset=request.reset)
        return pb.OverrideDerivedZoneResponse(zone=convert.zone_to_proto(rec),
                                              affected_flight_ids=affected)


def _as_derived(rec):
    """A served derived zone as an :class:`airspace.derived.DerivedZone` (for ED-269)."""
    from skytwin.airspace.derived import DerivedZone
    from skytwin.airspace.zones import Zone
    d = rec.derived
    zone = Zone(id=rec.id, lower=rec.lower, upper=rec.upper, polygon=rec.polygon,
                reason=rec.reason, authority=rec.authority, name=rec.name)
    return DerivedZone(zone=zone, category=d.category, rule=d.rule, source_id=d.source_id,
                       matched=d.matched, members=d.members, buffer_m=d.buffer_m,
                       sources=d.sources, also_matched=d.also_matched)
