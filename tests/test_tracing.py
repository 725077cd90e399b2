"""W3C trace context from the producer's span to the handler's span, with
OpenTelemetry's SDK recording spans in memory."""

from __future__ import annotations

import json
import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integrations import fanout as fanout_module
from integrations.consumer import Consumer
from outbox import aws
from outbox.api import record_event
from outbox.relay import Relay

_exporter = InMemorySpanExporter()


@pytest.fixture
def spans():
    """Return the in-memory exporter of this process's tracer provider."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        # OpenTelemetry accepts one global provider per process, so it is set
        # on first use and shared by later tests.
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    _exporter.clear()
    yield _exporter
    _exporter.clear()


def relay_once():
    relay = Relay()
    try:
        relay.run(threading.Event(), interval=0, once=True)
    finally:
        relay.close()


def consume_once(name: str):
    consumer = Consumer(name)
    try:
        consumer.run(threading.Event(), once=True)
    finally:
        consumer.close()


def traceparent_of(span) -> str:
    context = span.get_span_context()
    flags = int(context.trace_flags)
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"


@pytest.mark.django_db(transaction=True)
def test_traceparent_recorded_from_active_span(spans):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("signup") as span:
        event = record_event("user.signed_up", {"email": "ada@example.com"}, subject="1")

    assert event.trace_parent == traceparent_of(span)


@pytest.mark.django_db(transaction=True)
def test_traceparent_empty_without_span(spans):
    event = record_event("user.signed_up", {"email": "ada@example.com"}, subject="1")

    assert event.trace_parent == ""


@pytest.mark.django_db(transaction=True)
def test_traceparent_travels_as_attribute(spans, fanout):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("signup") as span:
        record_event("user.signed_up", {"email": "ada@example.com"}, subject="1")
    relay_once()

    response = aws.client("sqs").receive_message(
        QueueUrl=fanout_module.queue_url("slack"),
        MessageAttributeNames=["All"],
        WaitTimeSeconds=1,
    )

    (message,) = response["Messages"]
    attribute = message["MessageAttributes"]["traceparent"]
    assert attribute["DataType"] == "String"
    assert attribute["StringValue"] == traceparent_of(span)
    assert json.loads(message["Body"])["traceparent"] == traceparent_of(span)


@pytest.mark.django_db(transaction=True)
def test_handler_span_joins_producer_trace(spans, fanout, third_parties):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("signup") as producer:
        record_event("user.signed_up", {"email": "ada@example.com"}, subject="1")
    relay_once()

    consume_once("heap")

    handler_spans = [s for s in spans.get_finished_spans() if s.name == "deliver heap"]
    assert len(handler_spans) == 1
    handler = handler_spans[0]
    assert handler.context.trace_id == producer.get_span_context().trace_id
    assert handler.parent.span_id == producer.get_span_context().span_id
    assert handler.kind == trace.SpanKind.CONSUMER
    assert len(third_parties.heap) == 1
