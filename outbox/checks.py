"""System checks that report bad outbox configuration at start-up."""

import re

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router

from outbox import conf

# SNS topic names: 1 to 256 of these characters, FIFO ones ending in ".fifo".
TOPIC_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,251}(\.fifo)?$|^[A-Za-z0-9_-]{1,256}$")

NUMERIC_SETTINGS = (
    "BATCH_SIZE", "POLL_INTERVAL", "LEASE_SECONDS", "MAX_ATTEMPTS", "BACKOFF_BASE",
    "BACKOFF_MAX", "OUTAGE_BACKOFF_MAX", "PUBLISH_CONCURRENCY", "MAX_MESSAGE_BYTES",
    "RELAY_COUNT",
)


@checks.register()
def check_outbox_settings(app_configs, **kwargs):
    errors = []
    try:
        unknown = conf.unknown_keys()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="outbox.E001")]
    for key in unknown:
        errors.append(
            checks.Warning(
                f"OUTBOX[{key!r}] is not a known setting and is ignored.",
                hint=f"Known settings: {', '.join(sorted(conf.DEFAULTS))}.",
                id="outbox.W001",
            )
        )
    for key in NUMERIC_SETTINGS:
        try:
            conf.get_positive_number(key)
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id="outbox.E002"))
    topic_name = conf.get("TOPIC_NAME")
    if not conf.get("TOPIC_ARN") and topic_name and not TOPIC_NAME_PATTERN.match(
        str(topic_name)
    ):
        errors.append(
            checks.Error(
                f"OUTBOX['TOPIC_NAME'] = {topic_name!r} is not a valid SNS topic name.",
                hint="Use 1 to 256 letters, digits, '-' or '_', with '.fifo' at the "
                "end for a FIFO topic.",
                id="outbox.E006",
            )
        )
    if not (conf.get("TOPIC_ARN") or conf.get("TOPIC_NAME")):
        errors.append(
            checks.Error(
                "No SNS topic is configured.",
                hint="Set OUTBOX['TOPIC_NAME'] (created by setup_fanout) or "
                "OUTBOX['TOPIC_ARN'] (an existing topic).",
                id="outbox.E003",
            )
        )
    max_bytes = conf.get("MAX_MESSAGE_BYTES")
    if isinstance(max_bytes, int) and max_bytes > conf.MAX_SNS_MESSAGE_BYTES:
        errors.append(
            checks.Error(
                f"OUTBOX['MAX_MESSAGE_BYTES'] = {max_bytes} exceeds the SNS maximum "
                f"of {conf.MAX_SNS_MESSAGE_BYTES} bytes.",
                hint="Use 262144 (the default) or at most 1048576.",
                id="outbox.E004",
            )
        )
    return errors


@checks.register()
def check_relay_database(app_configs, **kwargs):
    """Reject several relays on SQLite, which has one write lock per file."""
    relays = conf.get("RELAY_COUNT")
    if isinstance(relays, bool) or not isinstance(relays, int) or relays <= 1:
        return []
    from outbox.models import OutboxEvent

    alias = router.db_for_write(OutboxEvent)
    vendor = connections[alias].vendor
    if vendor != "sqlite":
        return []
    return [
        checks.Error(
            f"OUTBOX['RELAY_COUNT'] is {relays} but database {alias!r} is SQLite, "
            "which cannot lock rows: relays would wait on its single write lock "
            "instead of sharing the backlog.",
            hint="Run one relay (RELAY_COUNT = 1) on SQLite, or use PostgreSQL, "
            "whose FOR UPDATE SKIP LOCKED lets relays claim separate rows.",
            id="outbox.E005",
        )
    ]
