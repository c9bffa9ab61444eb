import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from skytwin.v1 import airspace_pb2 as _airspace_pb2
from skytwin.v1 import flights_pb2 as _flights_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReportStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_STATUS_UNSPECIFIED: _ClassVar[ReportStatus]
    REPORT_STATUS_OK: _ClassVar[ReportStatus]
    REPORT_STATUS_UNKNOWN_FLIGHT: _ClassVar[ReportStatus]
    REPORT_STATUS_FOREIGN_FLIGHT: _ClassVar[ReportStatus]
    REPORT_STATUS_NOT_ACTIVE: _ClassVar[ReportStatus]
    REPORT_STATUS_NON_FINITE: _ClassVar[ReportStatus]
    REPORT_STATUS_OUT_OF_RANGE: _ClassVar[ReportStatus]
    REPORT_STATUS_IN_FUTURE: _ClassVar[ReportStatus]
    REPORT_STATUS_TOO_OLD: _ClassVar[ReportStatus]
    REPORT_STATUS_STALE: _ClassVar[ReportStatus]
    REPORT_STATUS_IMPOSSIBLE_JUMP: _ClassVar[ReportStatus]
    REPORT_STATUS_OVER_LIMIT: _ClassVar[ReportStatus]

class LifecycleState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIFECYCLE_STATE_UNSPECIFIED: _ClassVar[LifecycleState]
    LIFECYCLE_STATE_ACCEPTED: _ClassVar[LifecycleState]
    LIFECYCLE_STATE_ACTIVATED: _ClassVar[LifecycleState]
    LIFECYCLE_STATE_NONCONFORMING: _ClassVar[LifecycleState]
    LIFECYCLE_STATE_CONTINGENT: _ClassVar[LifecycleState]
    LIFECYCLE_STATE_ENDED: _ClassVar[LifecycleState]
    LIFECYCLE_STATE_CANCELLED: _ClassVar[LifecycleState]

class Actor(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTOR_UNSPECIFIED: _ClassVar[Actor]
    ACTOR_OPERATOR: _ClassVar[Actor]
    ACTOR_SERVICE: _ClassVar[Actor]
    ACTOR_REGULATOR: _ClassVar[Actor]
REPORT_STATUS_UNSPECIFIED: ReportStatus
REPORT_STATUS_OK: ReportStatus
REPORT_STATUS_UNKNOWN_FLIGHT: ReportStatus
REPORT_STATUS_FOREIGN_FLIGHT: ReportStatus
REPORT_STATUS_NOT_ACTIVE: ReportStatus
REPORT_STATUS_NON_FINITE: ReportStatus
REPORT_STATUS_OUT_OF_RANGE: ReportStatus
REPORT_STATUS_IN_FUTURE: ReportStatus
REPORT_STATUS_TOO_OLD: ReportStatus
REPORT_STATUS_STALE: ReportStatus
REPORT_STATUS_IMPOSSIBLE_JUMP: ReportStatus
REPORT_STATUS_OVER_LIMIT: ReportStatus
LIFECYCLE_STATE_UNSPECIFIED: LifecycleState
LIFECYCLE_STATE_ACCEPTED: LifecycleState
LIFECYCLE_STATE_ACTIVATED: LifecycleState
LIFECYCLE_STATE_NONCONFORMING: LifecycleState
LIFECYCLE_STATE_CONTINGENT: LifecycleState
LIFECYCLE_STATE_ENDED: LifecycleState
LIFECYCLE_STATE_CANCELLED: LifecycleState
ACTOR_UNSPECIFIED: Actor
ACTOR_OPERATOR: Actor
ACTOR_SERVICE: Actor
ACTOR_REGULATOR: Actor

class PositionReport(_message.Message):
    __slots__ = ("report_id", "flight_id", "time", "position", "alt_amsl_m", "velocity_east_mps", "velocity_north_mps", "velocity_up_mps", "accuracy_h_m", "accuracy_v_m")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ALT_AMSL_M_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_EAST_MPS_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_NORTH_MPS_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_UP_MPS_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_H_M_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_V_M_FIELD_NUMBER: _ClassVar[int]
    report_id: int
    flight_id: str
    time: _timestamp_pb2.Timestamp
    position: _airspace_pb2.LonLat
    alt_amsl_m: float
    velocity_east_mps: float
    velocity_north_mps: float
    velocity_up_mps: float
    accuracy_h_m: float
    accuracy_v_m: float
    def __init__(self, report_id: _Optional[int] = ..., flight_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., position: _Optional[_Union[_airspace_pb2.LonLat, _Mapping]] = ..., alt_amsl_m: _Optional[float] = ..., velocity_east_mps: _Optional[float] = ..., velocity_north_mps: _Optional[float] = ..., velocity_up_mps: _Optional[float] = ..., accuracy_h_m: _Optional[float] = ..., accuracy_v_m: _Optional[float] = ...) -> None: ...

class ReportAck(_message.Message):
    __slots__ = ("report_id", "flight_id", "status")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    report_id: int
    flight_id: str
    status: ReportStatus
    def __init__(self, report_id: _Optional[int] = ..., flight_id: _Optional[str] = ..., status: _Optional[_Union[ReportStatus, str]] = ...) -> None: ...

class LifecycleEvent(_message.Message):
    __slots__ = ("sequence", "flight_id", "from_state", "to_state", "actor", "time", "reason", "detail")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    flight_id: str
    from_state: LifecycleState
    to_state: LifecycleState
    actor: Actor
    time: _timestamp_pb2.Timestamp
    reason: str
    detail: str
    def __init__(self, sequence: _Optional[int] = ..., flight_id: _Optional[str] = ..., from_state: _Optional[_Union[LifecycleState, str]] = ..., to_state: _Optional[_Union[LifecycleState, str]] = ..., actor: _Optional[_Union[Actor, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class Advisory(_message.Message):
    __slots__ = ("advisory_id", "flight_id", "reason", "cause", "issued_time", "start_time", "waypoints", "hold", "added_delay")
    ADVISORY_ID_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    WAYPOINTS_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    ADDED_DELAY_FIELD_NUMBER: _ClassVar[int]
    advisory_id: str
    flight_id: str
    reason: str
    cause: _containers.RepeatedScalarFieldContainer[str]
    issued_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    waypoints: _containers.RepeatedCompositeFieldContainer[_flights_pb2.Waypoint]
    hold: _duration_pb2.Duration
    added_delay: _duration_pb2.Duration
    def __init__(self, advisory_id: _Optional[str] = ..., flight_id: _Optional[str] = ..., reason: _Optional[str] = ..., cause: _Optional[_Iterable[str]] = ..., issued_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., waypoints: _Optional[_Iterable[_Union[_flights_pb2.Waypoint, _Mapping]]] = ..., hold: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., added_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AdvisoryAnswer(_message.Message):
    __slots__ = ("advisory_id", "accept")
    ADVISORY_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    advisory_id: str
    accept: bool
    def __init__(self, advisory_id: _Optional[str] = ..., accept: _Optional[bool] = ...) -> None: ...

class AdvisoryAnswerAck(_message.Message):
    __slots__ = ("advisory_id", "ok", "error")
    ADVISORY_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    advisory_id: str
    ok: bool
    error: str
    def __init__(self, advisory_id: _Optional[str] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class TelemetryRequest(_message.Message):
    __slots__ = ("reports", "answers")
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[PositionReport]
    answers: _containers.RepeatedCompositeFieldContainer[AdvisoryAnswer]
    def __init__(self, reports: _Optional[_Iterable[_Union[PositionReport, _Mapping]]] = ..., answers: _Optional[_Iterable[_Union[AdvisoryAnswer, _Mapping]]] = ...) -> None: ...

class TelemetryResponse(_message.Message):
    __slots__ = ("acks", "events", "advisories", "answer_acks")
    ACKS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    ADVISORIES_FIELD_NUMBER: _ClassVar[int]
    ANSWER_ACKS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[ReportAck]
    events: _containers.RepeatedCompositeFieldContainer[LifecycleEvent]
    advisories: _containers.RepeatedCompositeFieldContainer[Advisory]
    answer_acks: _containers.RepeatedCompositeFieldContainer[AdvisoryAnswerAck]
    def __init__(self, acks: _Optional[_Iterable[_Union[ReportAck, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[LifecycleEvent, _Mapping]]] = ..., advisories: _Optional[_Iterable[_Union[Advisory, _Mapping]]] = ..., answer_acks: _Optional[_Iterable[_Union[AdvisoryAnswerAck, _Mapping]]] = ...) -> None: ...

class ReportBatchRequest(_message.Message):
    __slots__ = ("reports",)
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[PositionReport]
    def __init__(self, reports: _Optional[_Iterable[_Union[PositionReport, _Mapping]]] = ...) -> None: ...

class ReportBatchResponse(_message.Message):
    __slots__ = ("acks", "events")
    ACKS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[ReportAck]
    events: _containers.RepeatedCompositeFieldContainer[LifecycleEvent]
    def __init__(self, acks: _Optional[_Iterable[_Union[ReportAck, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[LifecycleEvent, _Mapping]]] = ...) -> None: ...

class AnswerAdvisoryRequest(_message.Message):
    __slots__ = ("advisory_id", "accept")
    ADVISORY_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    advisory_id: str
    accept: bool
    def __init__(self, advisory_id: _Optional[str] = ..., accept: _Optional[bool] = ...) -> None: ...

class AnswerAdvisoryResponse(_message.Message):
    __slots__ = ("advisory",)
    ADVISORY_FIELD_NUMBER: _ClassVar[int]
    advisory: Advisory
    def __init__(self, advisory: _Optional[_Union[Advisory, _Mapping]] = ...) -> None: ...

class SetFlightStateRequest(_message.Message):
    __slots__ = ("flight_id", "state", "reason")
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    state: LifecycleState
    reason: str
    def __init__(self, flight_id: _Optional[str] = ..., state: _Optional[_Union[LifecycleState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class SetFlightStateResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: LifecycleEvent
    def __init__(self, event: _Optional[_Union[LifecycleEvent, _Mapping]] = ...) -> None: ...

class GetFlightStateRequest(_message.Message):
    __slots__ = ("flight_id",)
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    def __init__(self, flight_id: _Optional[str] = ...) -> None: ...

class GetFlightStateResponse(_message.Message):
    __slots__ = ("flight_id", "state", "events")
    FLIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    flight_id: str
    state: LifecycleState
    events: _containers.RepeatedCompositeFieldContainer[LifecycleEvent]
    def __init__(self, flight_id: _Optional[str] = ..., state: _Optional[_Union[LifecycleState, str]] = ..., events: _Optional[_Iterable[_Union[LifecycleEvent, _Mapping]]] = ...) -> None: ...

class GetLiveStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLiveStatusResponse(_message.Message):
    __slots__ = ("flights_by_state", "reports", "reports_accepted", "conflicts_predicted", "advisories_issued", "advisories_accepted", "advisories_refused", "unresolved", "last_tick_ms", "tick_p99_ms", "track_rows_pending", "track_rows_dropped", "zone_unresolved")
    class FlightsByStateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    FLIGHTS_BY_STATE_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    REPORTS_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_PREDICTED_FIELD_NUMBER: _ClassVar[int]
    ADVISORIES_ISSUED_FIELD_NUMBER: _ClassVar[int]
    ADVISORIES_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ADVISORIES_REFUSED_FIELD_NUMBER: _ClassVar[int]
    UNRESOLVED_FIELD_NUMBER: _ClassVar[int]
    LAST_TICK_MS_FIELD_NUMBER: _ClassVar[int]
    TICK_P99_MS_FIELD_NUMBER: _ClassVar[int]
    TRACK_ROWS_PENDING_FIELD_NUMBER: _ClassVar[int]
    TRACK_ROWS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    ZONE_UNRESOLVED_FIELD_NUMBER: _ClassVar[int]
    flights_by_state: _containers.ScalarMap[str, int]
    reports: int
    reports_accepted: int
    conflicts_predicted: int
    advisories_issued: int
    advisories_accepted: int
    advisories_refused: int
    unresolved: int
    last_tick_ms: float
    tick_p99_ms: float
    track_rows_pending: int
    track_rows_dropped: int
    zone_unresolved: int
    def __init__(self, flights_by_state: _Optional[_Mapping[str, int]] = ..., reports: _Optional[int] = ..., reports_accepted: _Optional[int] = ..., conflicts_predicted: _Optional[int] = ..., advisories_issued: _Optional[int] = ..., advisories_accepted: _Optional[int] = ..., advisories_refused: _Optional[int] = ..., unresolved: _Optional[int] = ..., last_tick_ms: _Optional[float] = ..., tick_p99_ms: _Optional[float] = ..., track_rows_pending: _Optional[int] = ..., track_rows_dropped: _Optional[int] = ..., zone_unresolved: _Optional[int] = ...) -> None: ...
