"""The handler base class: one HTTP session, timeouts, and error mapping.

An integration module subclasses ``Handler``, lists the event types it
wants and maps one event to one ``HttpRequest``. The base class sends it,
or prints it when the integration has no credentials (the console
transport), and turns the response into success, a transient error worth
retrying, or a permanent one.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import requests
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from integrations.exceptions import PermanentDeliveryError, TransientDeliveryError
from outbox.messages import ReceivedEvent

logger = logging.getLogger(__name__)

USER_AGENT = "django-outbox-integrations/0.1 (+requests)"
TRANSIENT_STATUSES = {408, 425, 429}
TRANSPORTS = ("http", "console")


@dataclass
class HttpRequest:
    """The one request a handler makes for an event."""

    method: str
    url: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None


@dataclass
class DeliveryResult:
    status: int | None  # HTTP status, None for the console transport
    body: str = ""


class Handler:
    """Base class of integration handlers.

    Subclasses set ``event_types`` and ``required_options`` and implement
    ``build_request``. The ``OPTIONS`` of the handler's settings entry are
    in ``self.options``; ``TIMEOUT`` (seconds) and ``TRANSPORT`` ("http" or
    "console") are understood by every handler.
    """

    event_types: ClassVar[tuple[str, ...]] = ()
    required_options: ClassVar[tuple[str, ...]] = ()
    default_timeout: ClassVar[float] = 10.0
    # True when a repeated call for one event changes nothing more (an
    # idempotency key, a PUT). When False, the consumer dead-letters an event
    # whose earlier call may have happened instead of calling again.
    idempotent: ClassVar[bool] = True

    def __init__(self, name: str, options: dict[str, Any] | None = None):
        self.name = name
        self.options = dict(options or {})
        self.timeout = float(self.options.get("TIMEOUT", self.default_timeout))
        self.transport = self._choose_transport()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def _choose_transport(self) -> str:
        transport = self.options.get("TRANSPORT")
        if transport is None:
            return "http" if not self.missing_options() else "console"
        if transport not in TRANSPORTS:
            raise ImproperlyConfigured(
                f"OPTIONS['TRANSPORT'] of integration {self.name!r} is {transport!r}; "
                f"use one of {', '.join(TRANSPORTS)}, or remove it to choose by "
                "whether credentials are set."
            )
        return transport

    def missing_options(self) -> list[str]:
        return [key for key in self.required_options if not self.options.get(key)]

    def build_request(self, event: ReceivedEvent) -> HttpRequest:
        raise NotImplementedError

    def deliver(self, event: ReceivedEvent) -> DeliveryResult:
        """Send the event's request; raise a ``DeliveryError`` subclass on failure."""
        context = {"integration": self.name, "event_id": event.id}
        if event.type not in self.event_types:
            raise PermanentDeliveryError(
                f"integration {self.name!r} does not handle event type {event.type!r}",
                **context,
            )
        request = self.build_request(event)
        if self.transport == "console":
            self._print_request(request)
            return DeliveryResult(status=None)
        try:
            response = self.session.request(
                request.method,
                request.url,
                json=request.json,
                headers=request.headers,
                auth=request.auth,
                timeout=self.timeout,
            )
        except requests.Timeout as error:
            raise TransientDeliveryError(f"timed out: {error}", **context) from error
        except requests.ConnectionError as error:
            raise TransientDeliveryError(f"connection failed: {error}", **context) from error
        return self._check_response(response, context)

    def _check_response(self, response: requests.Response, context) -> DeliveryResult:
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult(status=status, body=response.text[:500])
        summary = f"HTTP {status} from {self.name}: {response.text[:300]}"
        if status in TRANSIENT_STATUSES or status >= 500:
            raise TransientDeliveryError(
                summary,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                status=status,
                **context,
            )
        raise PermanentDeliveryError(summary, status=status, **context)

    def _print_request(self, request: HttpRequest) -> None:
        # Like Django's console e-mail backend: show what would be sent, on
        # stdout rather than in the logs, without credentials.
        body = json.dumps(request.json, ensure_ascii=False, sort_keys=True)
        sys.stdout.write(f"[{self.name} console] {request.method} {request.url} {body}\n")
        sys.stdout.flush()

    def close(self) -> None:
        self.session.close()


def parse_retry_after(value: str | None) -> float | None:
    """Return the seconds of a ``Retry-After`` header (seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - timezone.now()).total_seconds())
