"""gRPC servicers: each method translates (server.convert), calls the service core off
the event loop (server.services._base.Base.run), and translates back. No computation
lives here; errors are mapped by server.errors, callers resolved by server.auth."""

from skytwin.server.services.airspace import AirspaceServicer
from skytwin.server.services.changes import ChangeServicer
from skytwin.server.services.flights import FlightServicer
from skytwin.server.services.live import LiveServicer
from skytwin.server.services.zones import ZoneServicer

__all__ = ["AirspaceServicer", "ChangeServicer", "FlightServicer", "LiveServicer", "ZoneServicer"]
