"""The event intake: the one path every event takes, whoever brings it (the ingress's webhooks, the worker's
CRM poll and ledger sweep, ``starter.py replay-event``).

:class:`EventRouter` turns a canonical event into a Temporal start or signal; :class:`EventIntake` wraps it
with the event ledger (claim, route, settle, record) and :class:`KeyedLocks`; :class:`ClientProvider` is the
lazily (re)connected Temporal client they share. Built by the bootstrap (``bootstrap.build_intake``).
"""

from intake.routing import (
    ClientProvider,
    EventIntake,
    EventRouter,
    KeyedLocks,
    Received,
    Routed,
    RoutingUnavailable,
    SweepResult,
)

__all__ = ["ClientProvider", "EventIntake", "EventRouter", "KeyedLocks", "Received", "Routed", "RoutingUnavailable",
           "SweepResult"]
