import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from skytwin.v1 import airspace_pb2 as _airspace_pb2
from skytwin.v1 import flights_pb2 as _flights_pb2
from skytwin.v1 import zones_pb2 as _zones_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_KIND_UNSPECIFIED: _ClassVar[ChangeKind]
    CHANGE_KIND_ZONE_ADDED: _ClassVar[ChangeKind]
    CHANGE_KIND_ZONE_UPDATED: _ClassVar[ChangeKind]
    CHANGE_KIND_ZONE_REMOVED: _ClassVar[ChangeKind]
    CHANGE_KIND_FLIGHT_ACCEPTED: _ClassVar[ChangeKind]
    CHANGE_KIND_FLIGHT_CANCELLED: _ClassVar[ChangeKind]
    CHANGE_KIND_FLIGHT_STATE_CHANGED: _ClassVar[ChangeKind]
CHANGE_KIND_UNSPECIFIED: ChangeKind
CHANGE_KIND_ZONE_ADDED: ChangeKind
CHANGE_KIND_ZONE_UPDATED: ChangeKind
CHANGE_KIND_ZONE_REMOVED: ChangeKind
CHANGE_KIND_FLIGHT_ACCEPTED: ChangeKind
CHANGE_KIND_FLIGHT_CANCELLED: ChangeKind
CHANGE_KIND_FLIGHT_STATE_CHANGED: ChangeKind

class WatchRequest(_message.Message):
    __slots__ = ("region", "since_sequence")
    REGION_FIELD_NUMBER: _ClassVar[int]
    SINCE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    region: _airspace_pb2.LonLatBox
    since_sequence: int
    def __init__(self, region: _Optional[_Union[_airspace_pb2.LonLatBox, _Mapping]] = ..., since_sequence: _Optional[int] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("sequence", "kind", "time", "actor", "zone", "flight", "affected_flight_ids", "reason", "flight_state")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_FLIGHT_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_STATE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    kind: ChangeKind
    time: _timestamp_pb2.Timestamp
    actor: str
    zone: _zones_pb2.Zone
    flight: _flights_pb2.Flight
    affected_flight_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    flight_state: str
    def __init__(self, sequence: _Optional[int] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., zone: _Optional[_Union[_zones_pb2.Zone, _Mapping]] = ..., flight: _Optional[_Union[_flights_pb2.Flight, _Mapping]] = ..., affected_flight_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., flight_state: _Optional[str] = ...) -> None: ...
