"""Public API for recording events in the outbox."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, router, transaction

from outbox import conf, signals
from outbox.exceptions import EventRecordError, TransactionRequiredError
from outbox.models import OutboxEvent
from outbox.tracing import current_traceparent

logger = logging.getLogger(__name__)

EVENT_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")


def record_event(
    event_type: str,
    data: dict[str, Any] | None = None,
    *,
    subject: str | int = "",
    source: str | None = None,
) -> OutboxEvent:
    """Write an event to the outbox in the caller's database transaction.

    The event is published only if that transaction commits. Called in
    autocommit mode (no ``transaction.atomic`` block open), the row is
    committed at once, as the change it describes was; set
    ``OUTBOX["REQUIRE_TRANSACTION"] = True`` to raise instead.
    """
    if not isinstance(event_type, str) or not EVENT_TYPE_PATTERN.match(event_type):
        raise EventRecordError(
            f"invalid event type {event_type!r}: use 1 to 200 letters, digits "
            "and . _ : / - starting with a letter or digit, e.g. 'user.signed_up'"
        )
    subject = str(subject)
    if len(subject) > 200:
        raise EventRecordError(
            f"subject of {event_type!r} is {len(subject)} characters long; "
            "the maximum is 200"
        )
    data = _normalise_data(event_type, data)

    database = router.db_for_write(OutboxEvent)
    if not transaction.get_connection(database).in_atomic_block:
        if conf.get("REQUIRE_TRANSACTION"):
            raise TransactionRequiredError(
                f"event {event_type!r} recorded outside a transaction; wrap the "
                "change and record_event() in transaction.atomic()"
            )
        logger.debug("recording event in autocommit mode", extra={"type": event_type})

    event = OutboxEvent.objects.using(database).create(
        type=event_type,
        source=source or conf.get("SOURCE"),
        subject=subject,
        data=data,
        trace_parent=current_traceparent(),
    )
    if conf.get("NOTIFY"):
        _notify_relays(database)
    if conf.get("CELERY_RELAY_ON_COMMIT"):
        # robust: a broker outage is logged and must not fail the committed
        # request; the scheduled relay or the polling relay picks the event up.
        transaction.on_commit(_schedule_relay, using=database, robust=True)
    signals.event_recorded.send(sender=OutboxEvent, event=event)
    return event


def _normalise_data(event_type: str, data: Any) -> Any:
    """Round-trip data through JSON so what is stored is what is sent."""
    if data is None:
        return {}
    try:
        normalised = json.loads(json.dumps(data, cls=DjangoJSONEncoder, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise EventRecordError(
            f"data of event {event_type!r} is not JSON-serialisable: {error}; "
            "pass dicts, lists, strings, finite numbers, booleans, dates or UUIDs"
        ) from error
    _check_text(event_type, normalised, "data")
    return normalised


# PostgreSQL's jsonb rejects U+0000, and a lone surrogate cannot be encoded
# in UTF-8 for the broker, so neither may stand in any key or string.
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def _check_text(event_type: str, value: Any, path: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(event_type, key, f"{path} key {key!r}")
            _check_text(event_type, item, f"{path}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(event_type, item, f"{path}[{index}]")
    elif isinstance(value, str) and _UNSTORABLE_TEXT.search(value):
        character = _UNSTORABLE_TEXT.search(value).group()
        raise EventRecordError(
            f"{path} of event {event_type!r} contains U+{ord(character):04X}, which "
            "cannot be stored or sent; remove or replace it before recording"
        )


def _schedule_relay() -> None:
    # Imported here because Celery is an optional dependency.
    from outbox.tasks import schedule_relay

    schedule_relay()


def _notify_relays(database: str) -> None:
    """Wake listening relays. PostgreSQL delivers NOTIFY only on commit."""
    connection = connections[database]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [conf.get("NOTIFY_CHANNEL")])
