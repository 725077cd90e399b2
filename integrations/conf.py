"""Settings of the integrations app, read lazily from ``settings.INTEGRATIONS``.

``INTEGRATIONS["HANDLERS"]`` maps an integration's name to its handler class
and options::

    INTEGRATIONS = {
        "HANDLERS": {
            "heap": {
                "CLASS": "integrations.handlers.heap.HeapHandler",
                "OPTIONS": {"APP_ID": os.environ.get("HEAP_APP_ID")},
            },
        },
    }

The name becomes the queue's name (after ``QUEUE_PREFIX``) and the
``integration`` column of every delivery row.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    "HANDLERS": {
        "heap": {"CLASS": "integrations.handlers.heap.HeapHandler"},
        "mailchimp": {"CLASS": "integrations.handlers.mailchimp.MailchimpHandler"},
        "slack": {"CLASS": "integrations.handlers.slack.SlackHandler"},
    },
    # Queue names are QUEUE_PREFIX + integration name (+ "-dlq").
    "QUEUE_PREFIX": "outbox-",
    # Defaults for every queue; a handler entry may override each one.
    "VISIBILITY_TIMEOUT": 60,  # seconds, SQS allows 0 to 43,200
    "MESSAGE_RETENTION": 345_600,  # seconds (4 days), SQS allows 60 to 1,209,600
    "DLQ_RETENTION": 1_209_600,  # seconds (14 days) so operators have time to redrive
    "MAX_RECEIVE_COUNT": 5,  # receives before SQS moves a message to the DLQ
    "RAW_MESSAGE_DELIVERY": True,
    # Consumer behaviour.
    "WAIT_TIME_SECONDS": 20,  # long polling, SQS allows 0 to 20
    "CONCURRENCY": 10,  # handler calls in flight per consumer process
    "RETRY_BACKOFF_BASE": 5,  # seconds before the second receive, doubled each time
    "RETRY_BACKOFF_MAX": 900,  # seconds, cap of one retry delay
}

HANDLER_KEYS = {
    "CLASS", "OPTIONS", "ENABLED", "VISIBILITY_TIMEOUT", "MESSAGE_RETENTION",
    "MAX_RECEIVE_COUNT",
}
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def get(key: str) -> Any:
    if key not in DEFAULTS:
        raise KeyError(f"unknown INTEGRATIONS setting {key!r}")
    configured = getattr(settings, "INTEGRATIONS", None) or {}
    if not isinstance(configured, dict):
        raise ImproperlyConfigured(
            f"settings.INTEGRATIONS must be a dict, got {type(configured).__name__}."
        )
    return configured.get(key, DEFAULTS[key])


def handler_entries() -> dict[str, dict]:
    """Return the validated ``HANDLERS`` entries, enabled or not."""
    entries = get("HANDLERS")
    if not isinstance(entries, dict):
        raise ImproperlyConfigured(
            "INTEGRATIONS['HANDLERS'] must be a dict of name to "
            "{'CLASS': 'dotted.path', 'OPTIONS': {...}}."
        )
    for name, entry in entries.items():
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ImproperlyConfigured(
                f"integration name {name!r} is invalid: use 1 to 40 lower-case "
                "letters, digits, '-' or '_', starting with a letter or digit"
            )
        if not isinstance(entry, dict) or "CLASS" not in entry:
            raise ImproperlyConfigured(
                f"INTEGRATIONS['HANDLERS'][{name!r}] must be a dict with a 'CLASS' "
                "key naming the handler class, e.g. "
                "'integrations.handlers.heap.HeapHandler'."
            )
        unknown = set(entry) - HANDLER_KEYS
        if unknown:
            raise ImproperlyConfigured(
                f"INTEGRATIONS['HANDLERS'][{name!r}] has unknown key(s) "
                f"{', '.join(sorted(unknown))}; allowed: {', '.join(sorted(HANDLER_KEYS))}."
            )
    return entries


# Allowed ranges of the whole-number settings. The queue ones are SQS's
# limits; the others keep the consumer's loop and backoff meaningful.
INTEGER_RANGES = {
    "VISIBILITY_TIMEOUT": (0, 43_200),
    "MESSAGE_RETENTION": (60, 1_209_600),
    "DLQ_RETENTION": (60, 1_209_600),
    "MAX_RECEIVE_COUNT": (1, 1_000),
    "WAIT_TIME_SECONDS": (0, 20),
    "CONCURRENCY": (1, 1_000),
    "RETRY_BACKOFF_BASE": (1, 43_200),
    "RETRY_BACKOFF_MAX": (1, 43_200),
}
QUEUE_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_-]{0,30}$")


def _checked_integer(label: str, key: str, value: Any) -> int:
    low, high = INTEGER_RANGES[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ImproperlyConfigured(
            f"{label} must be a whole number from {low} to {high}, got {value!r}."
        )
    return value


def get_int(key: str) -> int:
    """Return a whole-number setting, raising if it is outside its range."""
    return _checked_integer(f"INTEGRATIONS[{key!r}]", key, get(key))


def queue_setting(name: str, key: str) -> int:
    """Return a per-queue number, from the handler's entry or the default."""
    entry = handler_entries().get(name, {})
    if key in entry:
        label = f"INTEGRATIONS['HANDLERS'][{name!r}][{key!r}]"
        return _checked_integer(label, key, entry[key])
    return get_int(key)


def queue_prefix() -> str:
    prefix = get("QUEUE_PREFIX")
    if not isinstance(prefix, str) or not QUEUE_PREFIX_PATTERN.match(prefix):
        raise ImproperlyConfigured(
            f"INTEGRATIONS['QUEUE_PREFIX'] must be up to 30 letters, digits, '-' or "
            f"'_' (SQS queue names allow no others), got {prefix!r}."
        )
    return prefix


def unknown_keys() -> list[str]:
    configured = getattr(settings, "INTEGRATIONS", None) or {}
    if not isinstance(configured, dict):
        return []
    return sorted(set(configured) - set(DEFAULTS))
