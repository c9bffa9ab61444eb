import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from skytwin.v1 import airspace_pb2 as _airspace_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FlightStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLIGHT_STATUS_UNSPECIFIED: _ClassVar[FlightStatus]
    FLIGHT_STATUS_ACCEPTED: _ClassVar[FlightStatus]
    FLIGHT_STATUS_CANCELLED: _ClassVar[FlightStatus]
FLIGHT_STATUS_UNSPECIFIED: FlightStatus
FLIGHT_STATUS_ACCEPTED: FlightStatus
FLIGHT_STATUS_CANCELLED: FlightStatus

class RouteRequest(_message.Message):
    __slots__ = ("start", "goal", "departure_time", "ceiling_agl_m", "min_agl_m", "cruise_speed_mps", "climb_speed_mps", "descent_speed_mps", "start_alt_amsl_m", "goal_alt_amsl_m", "max_delay", "priority", "risk_weight", "max_band")
    START_FIELD_NUMBER: _ClassVar[int]
    GOAL_FIELD_NUMBER: _ClassVar[int]
    DEPARTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    CEILING_AGL_M_FIELD_NUMBER: _ClassVar[int]
    MIN_AGL_M_FIELD_NUMBER: _ClassVar[int]
    CRUISE_SPEED_MPS_FIELD_NUMBER: _ClassVar[int]
    CLIMB_SPEED_MPS_FIELD_NUMBER: _ClassVar[int]
    DESCENT_SPEED_MPS_FIELD_NUMBER: _ClassVar[int]
    START_ALT_AMSL_M_FIELD_NUMBER: _ClassVar[int]
    GOAL_ALT_AMSL_M_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RISK_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_BAND_FIELD_NUMBER: _ClassVar[int]
    start: _airspace_pb2.LonLat
    goal: _airspace_pb2.LonLat
    departure_time: _timestamp_pb2.Timestamp
    ceiling_agl_m: float
    min_agl_m: float
    cruise_speed_mps: float
    climb_speed_mps: float
    descent_speed_mps: float
    start_alt_amsl_m: float
    goal_alt_amsl_m: float
    max_delay: _duration_pb2.Duration
    priority: float
    risk_weight: float
    max_band: int
    def __init__(self, start: _Optional[_Union[_airspace_pb2.LonLat, _Mapping]] = ..., goal: _Optional[_Union[_airspace_pb2.LonLat, _Mapping]] = ..., departure_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ceiling_agl_m: _Optional[float] = ..., min_agl_m: _Optional[float] = ..., cruise_speed_mps: _Optional[float] = ..., climb_speed_mps: _Optional[float] = ..., descent_speed_mps: _Optional[float] = ..., start_alt_amsl_m: _Optional[float] = ..., goal_alt_amsl_m: _Optional[float] = ..., max_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., priority: _Optional[float] = ..., risk_weight: _Optional[float] = ..., max_band: _Optional[int] = ...) -> None: ...

class Waypoint(_message.Message):
    __slots__ = ("position", "alt_amsl_m", "alt_agl_m", "time")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ALT_AMSL_M_FIELD_NUMBER: _ClassVar[int]
    ALT_AGL_M_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    position: _airspace_pb2.LonLat
    alt_amsl_m: float
    alt_agl_m: float
    time: _timestamp_pb2.Timestamp
    def __init__(self, position: _Optional[_Union[_airspace_pb2.LonLat, _Mapping]] = ..., alt_amsl_m: _Optional[float] = ..., alt_agl_m: _Optional[float] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DerivedZoneNear(_message.Message):
    __slots__ = ("zone_id", "category", "rule", "source_id", "distance_m")
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_M_FIELD_NUMBER: _ClassVar[int]
    zone_id: str
    category: str
    rule: str
    source_id: str
    distance_m: float
    def __init__(self, zone_id: _Optional[str] = ..., category: _Optional[str] = ..., rule: _Optional[str] = ..., source_id: _Optional[str] = ..., distance_m: _Optional[float] = ...) -> None: ...

class RouteExposure(_message.Message):
    __slots__ = ("people_overflown", "people_overflown_unit", "worst_band", "worst_band_name", "igrc", "max_density_ppl_km2", "period", "population_source", "length_by_band_m", "derived_zones_near", "warnings", "risk_weight", "max_band")
    class LengthByBandMEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PEOPLE_OVERFLOWN_FIELD_NUMBER: _ClassVar[int]
    PEOPLE_OVERFLOWN_UNIT_FIELD_NUMBER: _ClassVar[int]
    WORST_BAND_FIELD_NUMBER: _ClassVar[int]
    WORST_BAND_NAME_FIELD_NUMBER: _ClassVar[int]
    IGRC_FIELD_NUMBER: _ClassVar[int]
    MAX_DENSITY_PPL_KM2_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    POPULATION_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LENGTH_BY_BAND_M_FIELD_NUMBER: _ClassVar[int]
    DERIVED_ZONES_NEAR_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    RISK_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_BAND_FIELD_NUMBER: _ClassVar[int]
    people_overflown: float
    people_overflown_unit: str
    worst_band: int
    worst_band_name: str
    igrc: int
    max_density_ppl_km2: float
    period: str
    population_source: str
    length_by_band_m: _containers.ScalarMap[str, float]
    derived_zones_near: _containers.RepeatedCompositeFieldContainer[DerivedZoneNear]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    risk_weight: float
    max_band: int
    def __init__(self, people_overflown: _Optional[float] = ..., people_overflown_unit: _Optional[str] = ..., worst_band: _Optional[int] = ..., worst_band_name: _Optional[str] = ..., igrc: _Optional[int] = ..., max_density_ppl_km2: _Optional[float] = ..., period: _Optional[str] = ..., population_source: _Optional[str] = ..., length_by_band_m: _Optional[_Mapping[str, float]] = ..., derived_zones_near: _Optional[_Iterable[_Union[DerivedZoneNear, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ..., risk_weight: _Optional[float] = ..., max_band: _Optional[int] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("waypoints", "length_m", "duration", "clearance_m", "straight_m", "search_level", "zones_considered", "exposure")
    WAYPOINTS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_M_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    CLEARANCE_M_FIELD_NUMBER: _ClassVar[int]
    STRAIGHT_M_FIELD_NUMBER: _ClassVar[int]
    SEARCH_LEVEL_FIELD_NUMBER: _ClassVar[int]
    ZONES_CONSIDERED_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    waypoints: _containers.RepeatedCompositeFieldContainer[Waypoint]
    length_m: float
    duration: _duration_pb2.Duration
    clearance_m: float
    straight_m: float
    search_level: int
    zones_considered: _containers.RepeatedScalarFieldContainer[str]
    exposure: RouteExposure
    def __init__(self, waypoints: _Optional[_Iterable[_Union[Waypoint, _Mapping]]] = ..., length_m: _Optional[float] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., clearance_m: _Optional[float] = ..., straight_m: _Optional[float] = ..., search_level: _Optional[int] = ..., zones_considered: _Optional[_Iterable[str]] = ..., exposure: _Optional[_Union[RouteExposure, _Mapping]] = ...) -> None: ...

class Flight(_message.Message):
    __slots__ = ("flight_id", "operator_id", "request_id", "status", "route", "delay", "layer_shift", "created_time", "cancelled_time", "priority", "cancel_reason")
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    LAYER_SHIFT_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_TIME_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    operator_id: str
    request_id: str
    status: FlightStatus
    route: Route
    delay: _duration_pb2.Duration
    layer_shift: int
    created_time: _timestamp_pb2.Timestamp
    cancelled_time: _timestamp_pb2.Timestamp
    priority: float
    cancel_reason: str
    def __init__(self, flight_id: _Optional[str] = ..., operator_id: _Optional[str] = ..., request_id: _Optional[str] = ..., status: _Optional[_Union[FlightStatus, str]] = ..., route: _Optional[_Union[Route, _Mapping]] = ..., delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., layer_shift: _Optional[int] = ..., created_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancelled_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[float] = ..., cancel_reason: _Optional[str] = ...) -> None: ...

class PlanRouteRequest(_message.Message):
    __slots__ = ("route",)
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    route: RouteRequest
    def __init__(self, route: _Optional[_Union[RouteRequest, _Mapping]] = ...) -> None: ...

class PlanRouteResponse(_message.Message):
    __slots__ = ("route", "plan_id", "plan_expire_time")
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    route: Route
    plan_id: str
    plan_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, route: _Optional[_Union[Route, _Mapping]] = ..., plan_id: _Optional[str] = ..., plan_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubmitFlightRequest(_message.Message):
    __slots__ = ("request_id", "route", "plan_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    route: RouteRequest
    plan_id: str
    def __init__(self, request_id: _Optional[str] = ..., route: _Optional[_Union[RouteRequest, _Mapping]] = ..., plan_id: _Optional[str] = ...) -> None: ...

class SubmitFlightResponse(_message.Message):
    __slots__ = ("flight", "replayed", "replanned", "exposure")
    FLIGHT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    REPLANNED_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    flight: Flight
    replayed: bool
    replanned: bool
    exposure: RouteExposure
    def __init__(self, flight: _Optional[_Union[Flight, _Mapping]] = ..., replayed: _Optional[bool] = ..., replanned: _Optional[bool] = ..., exposure: _Optional[_Union[RouteExposure, _Mapping]] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("request_id", "routes", "max_solve_s")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    MAX_SOLVE_S_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    routes: _containers.RepeatedCompositeFieldContainer[RouteRequest]
    max_solve_s: float
    def __init__(self, request_id: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[RouteRequest, _Mapping]]] = ..., max_solve_s: _Optional[float] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("flights", "replayed", "solver_status")
    FLIGHTS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    SOLVER_STATUS_FIELD_NUMBER: _ClassVar[int]
    flights: _containers.RepeatedCompositeFieldContainer[Flight]
    replayed: bool
    solver_status: str
    def __init__(self, flights: _Optional[_Iterable[_Union[Flight, _Mapping]]] = ..., replayed: _Optional[bool] = ..., solver_status: _Optional[str] = ...) -> None: ...

class GetFlightRequest(_message.Message):
    __slots__ = ("flight_id",)
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    def __init__(self, flight_id: _Optional[str] = ...) -> None: ...

class GetFlightResponse(_message.Message):
    __slots__ = ("flight",)
    FLIGHT_FIELD_NUMBER: _ClassVar[int]
    flight: Flight
    def __init__(self, flight: _Optional[_Union[Flight, _Mapping]] = ...) -> None: ...

class ListFlightsRequest(_message.Message):
    __slots__ = ("operator_id", "status", "start_time", "end_time", "page_size", "page_token")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    status: FlightStatus
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, operator_id: _Optional[str] = ..., status: _Optional[_Union[FlightStatus, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFlightsResponse(_message.Message):
    __slots__ = ("flights", "next_page_token")
    FLIGHTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flights: _containers.RepeatedCompositeFieldContainer[Flight]
    next_page_token: str
    def __init__(self, flights: _Optional[_Iterable[_Union[Flight, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelFlightRequest(_message.Message):
    __slots__ = ("flight_id", "reason")
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    reason: str
    def __init__(self, flight_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelFlightResponse(_message.Message):
    __slots__ = ("flight",)
    FLIGHT_FIELD_NUMBER: _ClassVar[int]
    flight: Flight
    def __init__(self, flight: _Optional[_Union[Flight, _Mapping]] = ...) -> None: ...
