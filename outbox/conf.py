"""Settings of the outbox app, read lazily from ``settings.OUTBOX``.

Every key has a default here, so a project only sets what it changes. The
dictionary is read on each access, never at import, so ``override_settings``
and the ``settings`` fixture work in tests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # SNS topic that the relay publishes to. TOPIC_ARN wins when set;
    # otherwise the topic is looked up (and created) by TOPIC_NAME. A name
    # ending in ".fifo" makes a FIFO topic with per-subject ordering.
    "TOPIC_ARN": None,
    "TOPIC_NAME": "outbox-events",
    # Passed to boto3 clients. None means boto3's own resolution: the
    # standard credential chain, AWS_DEFAULT_REGION and AWS_ENDPOINT_URL.
    "AWS_REGION": None,
    "AWS_ENDPOINT_URL": None,
    # CloudEvents "source" attribute of every recorded event.
    "SOURCE": "/django/outbox",
    # Relay behaviour.
    "BATCH_SIZE": 100,
    "POLL_INTERVAL": 1.0,  # seconds between polls when idle
    "LEASE_SECONDS": 60,  # how long a claim protects rows from other relays
    "MAX_ATTEMPTS": 10,  # publish attempts before an event becomes failed
    "BACKOFF_BASE": 2.0,  # seconds before the first retry, doubled each time
    "BACKOFF_MAX": 600.0,  # seconds, cap of one retry delay
    "OUTAGE_BACKOFF_MAX": 60.0,  # seconds, cap of the relay's pause in an outage
    "PUBLISH_CONCURRENCY": 4,  # PublishBatch calls in flight at once
    "PUBLISHER": "outbox.publishers.SNSPublisher",
    # Relay processes expected to run at once. A system check rejects more
    # than one on SQLite, whose single write lock serialises their claims.
    "RELAY_COUNT": 1,
    # Wake the relay on commit (PostgreSQL LISTEN/NOTIFY). Polling stays on.
    "NOTIFY": False,
    "NOTIFY_CHANNEL": "outbox_event",
    # Queue the Celery task outbox.tasks.relay_pending when the transaction
    # that recorded an event commits (needs the celery extra).
    "CELERY_RELAY_ON_COMMIT": False,
    # Payloads above this many UTF-8 bytes (body plus message attributes)
    # are stored in CLAIM_CHECK_STORAGE and the message carries a pointer.
    # 262,144 bytes is the SNS and SQS default maximum.
    "MAX_MESSAGE_BYTES": 262_144,
    "CLAIM_CHECK_STORAGE": "default",
    "CLAIM_CHECK_PREFIX": "outbox-payloads/",
    # Bearer token that the metrics endpoint requires; None leaves it open,
    # so restrict it at the network or proxy instead.
    "METRICS_TOKEN": None,
    # Raise instead of writing an event when no transaction is open.
    "REQUIRE_TRANSACTION": False,
}

MAX_SNS_MESSAGE_BYTES = 1_048_576


def get(key: str) -> Any:
    """Return the value of ``OUTBOX[key]``, or its default."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown OUTBOX setting {key!r}")
    configured = getattr(settings, "OUTBOX", None) or {}
    if not isinstance(configured, dict):
        raise ImproperlyConfigured(
            f"settings.OUTBOX must be a dict, got {type(configured).__name__}."
        )
    return configured.get(key, DEFAULTS[key])


def get_positive_number(key: str) -> float:
    """Return a numeric setting, raising if it is not a positive number."""
    value = get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ImproperlyConfigured(
            f"OUTBOX[{key!r}] must be a positive number, got {value!r}; "
            f"remove it to use the default {DEFAULTS[key]!r}."
        )
    return value


def is_fifo_topic() -> bool:
    arn_or_name = get("TOPIC_ARN") or get("TOPIC_NAME") or ""
    return str(arn_or_name).endswith(".fifo")


def unknown_keys() -> list[str]:
    configured = getattr(settings, "OUTBOX", None) or {}
    if not isinstance(configured, dict):
        return []
    return sorted(set(configured) - set(DEFAULTS))
