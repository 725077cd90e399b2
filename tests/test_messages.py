"""CloudEvent encoding, byte sizing and unwrapping of received bodies."""

import json
import uuid

import pytest
from django.utils import timezone

from outbox.exceptions import InvalidMessageError
from outbox.messages import (
    build_message,
    encode_json,
    message_size,
    unwrap_body,
    validate_cloudevent,
)
from outbox.models import OutboxEvent

SQS_ALLOWED = (
    lambda c: c in "\t\n\r"
    or 0x20 <= ord(c) <= 0xD7FF
    or 0xE000 <= ord(c) <= 0xFFFD
    or 0x10000 <= ord(c) <= 0x10FFFF
)


def make_event(**overrides):
    fields = {
        "id": uuid.uuid4(),
        "type": "user.signed_up",
        "source": "/tests",
        "subject": "42",
        "data": {"name": "Ada"},
        "created_at": timezone.now(),
    }
    fields.update(overrides)
    return OutboxEvent(**fields)


def test_build_message_is_structured_cloudevent():
    event = make_event()
    message = build_message(event, max_bytes=262_144, payload_prefix="p/")
    body = json.loads(message.body)

    assert body["specversion"] == "1.0"
    assert body["id"] == str(event.id)
    assert body["type"] == "user.signed_up"
    assert body["source"] == "/tests"
    assert body["subject"] == "42"
    assert body["datacontenttype"] == "application/json"
    assert body["data"] == {"name": "Ada"}
    assert body["time"].endswith("Z")
    assert message.attributes["event_type"] == {
        "DataType": "String", "StringValue": "user.signed_up",
    }
    assert message.payload is None


def test_encode_json_escapes_characters_sqs_rejects():
    text = "nul\x00 bell\x07 nonchar\uffff\ufffe lone\ud800 emoji🚀 markup<b>&amp;"
    encoded = encode_json({"text": text})

    assert all(SQS_ALLOWED(c) for c in encoded)
    assert json.loads(encoded)["text"] == text


def test_message_size_counts_utf8_bytes():
    attributes = {"event_type": {"DataType": "String", "StringValue": "é"}}

    assert message_size("🚀", {}) == 4
    assert message_size("a", attributes) == 1 + len("event_type") + len("String") + 2


def test_large_payload_moves_to_claim_check():
    event = make_event(data={"blob": "🚀" * 70_000})  # 70,000 characters, 280,000 bytes
    message = build_message(event, max_bytes=262_144, payload_prefix="p/")
    body = json.loads(message.body)

    assert "data" not in body
    assert body["dataref"] == f"p/{event.id}.json"
    assert message.size <= 262_144
    assert json.loads(message.payload) == {"blob": "🚀" * 70_000}
    assert message.attributes["ExtendedPayloadSize"]["StringValue"] == str(len(message.payload))


def test_unwrap_accepts_sns_envelope_and_raw():
    cloudevent = {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": {}}
    envelope = json.dumps({
        "Type": "Notification",
        "Message": json.dumps(cloudevent),
        "MessageAttributes": {"event_type": {"Type": "String", "Value": "t"}},
    })

    assert unwrap_body(envelope) == (cloudevent, {"event_type": "t"})
    raw_attributes = {"event_type": {"DataType": "String", "StringValue": "t"}}
    assert unwrap_body(json.dumps(cloudevent), raw_attributes) == (
        cloudevent, {"event_type": "t"},
    )


@pytest.mark.parametrize(
    "body, reason",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected an object"),
        ('{"Type": "Notification", "Message": "{oops"}', "Message is not JSON"),
    ],
)
def test_unwrap_rejects_bad_bodies(body, reason):
    with pytest.raises(InvalidMessageError, match=reason):
        unwrap_body(body)


@pytest.mark.parametrize(
    "document, reason",
    [
        ({"id": "1", "source": "s", "type": "t", "data": {}}, "specversion"),
        ({"specversion": "0.3", "id": "1", "source": "s", "type": "t", "data": {}},
         "unsupported CloudEvents specversion"),
        ({"specversion": "1.0", "id": "1", "source": "s", "type": "t"}, "neither data"),
        ({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": {},
          "datacontenttype": "text/xml"}, "datacontenttype"),
    ],
)
def test_validate_rejects_invalid_cloudevents(document, reason):
    with pytest.raises(InvalidMessageError, match=reason):
        validate_cloudevent(document)
