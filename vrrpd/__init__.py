"""vrrpd: VRRP for pykeepalived.

This package's pure core (no sockets, clock or bus):

* :mod:`vrrpd.packet` — advert codec (v2/v3, IPv4/IPv6, every checksum form), precomputed bytes
* :mod:`vrrpd.validate` — receive validation with named drop reasons and counters
* :mod:`vrrpd.machine` — the per-instance state machine (events + now → actions)
* :mod:`vrrpd.priority` — effective priority and faults from weighted trackers
* :mod:`vrrpd.syncgroup` — vrrp_sync_group coordination
* :mod:`vrrpd.ah` — keepalived-style VRRPv2 IPsec-AH wrap/unwrap and the per-instance
  sequence counter (:class:`AhSession`; its sockets are in ``vrrpd.ah_sockets``)
* :mod:`vrrpd.pending` — instances that cannot start yet: reason, back-off, FAULT report

The drivers around it (not exported: the daemon wires them, ``vrrpd.process``):
``vrrpd.runner`` executes one instance's actions through a ``vrrpd.host.RunnerHost``
(``vrrpd.outputs``); ``vrrpd.socket_pool``, ``vrrpd.health``, ``vrrpd.starter`` and
``vrrpd.groups`` each own one part of the daemon; ``vrrpd.engine`` dispatches bus events and
timers to them (docs/architecture.md, "The pure cores and their drivers").
"""

from vrrpd.ah import AH_LEN, IPPROTO_AH, AhError, AhSession, Unwrapped, unwrap, wrap
from vrrpd.errors import (
    BadAddressCountError,
    BadChecksumError,
    BadIntervalError,
    BadLengthError,
    BadTypeError,
    BadVersionError,
    DecodeError,
    EncodeError,
    TooShortError,
    VrrpdError,
)
from vrrpd.machine import (
    Action,
    AdvertReceived,
    CancelTimer,
    Cause,
    CauseKind,
    Event,
    FaultChanged,
    InstanceParams,
    Log,
    Machine,
    Notify,
    PriorityChanged,
    Resume,
    RxLowerPriority,
    SendAdvert,
    SendGarp,
    SetTimer,
    SetVips,
    Shutdown,
    Startup,
    State,
    TimerFired,
    TimerName,
)
from vrrpd.packet import (
    DEFAULT_RX_FORMS,
    IPPROTO_VRRP,
    MCAST_V4,
    MCAST_V6,
    Advert,
    AuthType,
    ChecksumForm,
    IPAddress,
    PreparedAdvert,
    compute_checksum,
    decode,
    encode,
    internet_checksum,
    matching_checksum_form,
    parse,
    prepare,
)
from vrrpd.pending import Backoff, PendingStarts
from vrrpd.priority import PriorityVerdict, Tracker, TrackerKind, evaluate
from vrrpd.syncgroup import GroupNotify, SyncGroup
from vrrpd.validate import (
    Accepted,
    Drop,
    DropReason,
    Expectations,
    IpFacts,
    Note,
    ReceiveCounters,
    validate,
)

__all__ = [
    "AH_LEN",
    "DEFAULT_RX_FORMS",
    "IPPROTO_AH",
    "IPPROTO_VRRP",
    "MCAST_V4",
    "MCAST_V6",
    "Accepted",
    "Action",
    "Advert",
    "AdvertReceived",
    "AhError",
    "AhSession",
    "AuthType",
    "Backoff",
    "BadAddressCountError",
    "BadChecksumError",
    "BadIntervalError",
    "BadLengthError",
    "BadTypeError",
    "BadVersionError",
    "CancelTimer",
    "Cause",
    "CauseKind",
    "ChecksumForm",
    "DecodeError",
    "Drop",
    "DropReason",
    "EncodeError",
    "Event",
    "Expectations",
    "FaultChanged",
    "GroupNotify",
    "IPAddress",
    "InstanceParams",
    "IpFacts",
    "Log",
    "Machine",
    "Note",
    "Notify",
    "PendingStarts",
    "PreparedAdvert",
    "PriorityChanged",
    "PriorityVerdict",
    "ReceiveCounters",
    "Resume",
    "RxLowerPriority",
    "SendAdvert",
    "SendGarp",
    "SetTimer",
    "SetVips",
    "Shutdown",
    "Startup",
    "State",
    "SyncGroup",
    "TimerFired",
    "TimerName",
    "TooShortError",
    "Tracker",
    "TrackerKind",
    "Unwrapped",
    "VrrpdError",
    "compute_checksum",
    "decode",
    "encode",
    "evaluate",
    "internet_checksum",
    "matching_checksum_form",
    "parse",
    "prepare",
    "unwrap",
    "validate",
    "wrap",
]
