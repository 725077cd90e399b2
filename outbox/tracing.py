"""W3C trace context carried from the producer to the consumers.

OpenTelemetry is optional: without it, no trace context is recorded and the
handlers run outside any span.
"""

from __future__ import annotations

import contextlib
import re

TRACEPARENT_PATTERN = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def current_traceparent() -> str:
    """Return the active span's ``traceparent`` header, or an empty string."""
    try:
        from opentelemetry import propagate
    except ImportError:
        return ""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    value = carrier.get("traceparent", "")
    return value if TRACEPARENT_PATTERN.match(value) else ""


@contextlib.contextmanager
def restored_context(traceparent: str, span_name: str):
    """Run the block inside a span whose parent is ``traceparent``."""
    try:
        from opentelemetry import context, propagate, trace
    except ImportError:
        yield
        return
    if not TRACEPARENT_PATTERN.match(traceparent or ""):
        yield
        return
    parent = propagate.extract({"traceparent": traceparent})
    token = context.attach(parent)
    try:
        tracer = trace.get_tracer("outbox")
        with tracer.start_as_current_span(span_name, kind=trace.SpanKind.CONSUMER):
            yield
    finally:
        context.detach(token)
