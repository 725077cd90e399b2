"""The message format: CloudEvents 1.0 in structured JSON mode.

Producers turn an ``OutboxEvent`` into a message body and SNS message
attributes here, and consumers turn a received SQS message back into a
CloudEvent dictionary. Payloads larger than the broker allows travel by
claim check: the data is stored and the event carries the CloudEvents
``dataref`` extension with the storage key in its place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from outbox.exceptions import InvalidMessageError

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
EVENT_TYPE_ATTRIBUTE = "event_type"
TRACEPARENT_ATTRIBUTE = "traceparent"
PAYLOAD_SIZE_ATTRIBUTE = "ExtendedPayloadSize"
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")

# SQS accepts only #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
# #x10000-#x10FFFF in a body. json.dumps already escapes the control
# characters, so what is left to escape are surrogates, U+FFFE and U+FFFF.
# They can only stand inside JSON strings, where a \\u escape is valid.
_SQS_FORBIDDEN = re.compile("[\ud800-\udfff\ufffe\uffff]")


@dataclass
class OutgoingMessage:
    """One message ready for ``PublishBatch``."""

    event_id: str
    body: str
    attributes: dict[str, dict[str, str]]
    subject: str = ""
    payload: bytes | None = None  # data to store first when offloaded
    payload_key: str = ""

    @property
    def size(self) -> int:
        return message_size(self.body, self.attributes)


@dataclass
class ReceivedEvent:
    """A CloudEvent read from a queue, with its data resolved."""

    id: str
    type: str
    source: str
    subject: str
    time: str
    data: Any
    traceparent: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def format_time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def build_cloudevent(event) -> dict[str, Any]:
    """Return the structured-mode CloudEvent for an ``OutboxEvent``."""
    cloudevent = {
        "specversion": SPEC_VERSION,
        "id": str(event.id),
        "source": event.source,
        "type": event.type,
        "time": format_time(event.created_at),
        "datacontenttype": CONTENT_TYPE,
        "data": event.data,
    }
    if event.subject:
        cloudevent["subject"] = event.subject
    if event.trace_parent:
        cloudevent["traceparent"] = event.trace_parent
    return cloudevent


def encode_json(value: Any) -> str:
    """Serialise to compact JSON whose every character real SQS accepts."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _SQS_FORBIDDEN.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def message_size(body: str, attributes: dict[str, dict[str, str]]) -> int:
    """Count a message's size the way SNS and SQS do: UTF-8 bytes of the body,
    and of each attribute's name, data type and value."""
    size = len(body.encode("utf-8", "surrogatepass"))
    for name, attribute in attributes.items():
        size += len(name.encode("utf-8"))
        size += len(attribute["DataType"].encode("utf-8"))
        size += len(attribute.get("StringValue", "").encode("utf-8", "surrogatepass"))
    return size


def build_attributes(event, payload_size: int | None = None) -> dict:
    attributes = {
        EVENT_TYPE_ATTRIBUTE: {"DataType": "String", "StringValue": event.type},
    }
    if event.trace_parent:
        attributes[TRACEPARENT_ATTRIBUTE] = {
            "DataType": "String",
            "StringValue": event.trace_parent,
        }
    if payload_size is not None:
        attributes[PAYLOAD_SIZE_ATTRIBUTE] = {
            "DataType": "Number",
            "StringValue": str(payload_size),
        }
    return attributes


def build_message(event, max_bytes: int, payload_prefix: str) -> OutgoingMessage:
    """Encode an event, moving its data to a claim check when too large."""
    cloudevent = build_cloudevent(event)
    body = encode_json(cloudevent)
    attributes = build_attributes(event)
    message = OutgoingMessage(str(event.id), body, attributes, event.subject)
    if message.size <= max_bytes:
        return message

    payload = encode_json(cloudevent.pop("data")).encode("utf-8", "surrogatepass")
    key = event.payload_key or f"{payload_prefix}{event.id}.json"
    cloudevent["dataref"] = key
    message.body = encode_json(cloudevent)
    message.attributes = build_attributes(event, payload_size=len(payload))
    message.payload = payload
    message.payload_key = key
    return message


def unwrap_body(body: str, attributes: dict | None = None) -> tuple[dict, dict]:
    """Return the CloudEvent and its message attributes from an SQS body.

    Accepts the SNS envelope (the default subscription) and raw message
    delivery, where the body is the CloudEvent itself.
    """
    try:
        document = json.loads(body)
    except (TypeError, ValueError) as error:
        raise InvalidMessageError(f"body is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise InvalidMessageError(
            f"body is JSON {type(document).__name__}, expected an object"
        )

    if document.get("Type") == "Notification" and "Message" in document:
        envelope_attributes = {
            name: value.get("Value", "")
            for name, value in (document.get("MessageAttributes") or {}).items()
            if isinstance(value, dict)
        }
        try:
            inner = json.loads(document["Message"])
        except (TypeError, ValueError) as error:
            raise InvalidMessageError(
                f"SNS envelope's Message is not JSON: {error}"
            ) from error
        if not isinstance(inner, dict):
            raise InvalidMessageError("SNS envelope's Message is not a JSON object")
        return inner, envelope_attributes

    raw_attributes = {
        name: value.get("StringValue", "")
        for name, value in (attributes or {}).items()
        if isinstance(value, dict)
    }
    return document, raw_attributes


def validate_cloudevent(document: dict, known_types=None) -> None:
    """Raise ``InvalidMessageError`` unless ``document`` is a CloudEvent 1.0."""
    missing = [name for name in REQUIRED_ATTRIBUTES if not document.get(name)]
    if missing:
        raise InvalidMessageError(
            f"CloudEvent is missing required attribute(s): {', '.join(missing)}"
        )
    if document["specversion"] != SPEC_VERSION:
        raise InvalidMessageError(
            f"unsupported CloudEvents specversion {document['specversion']!r}, "
            f"expected {SPEC_VERSION!r}"
        )
    for name in ("id", "source", "type"):
        if not isinstance(document[name], str):
            raise InvalidMessageError(f"CloudEvent attribute {name!r} is not a string")
    if "data" not in document and "dataref" not in document:
        raise InvalidMessageError("CloudEvent has neither data nor dataref")
    content_type = document.get("datacontenttype", CONTENT_TYPE)
    if content_type != CONTENT_TYPE:
        raise InvalidMessageError(
            f"unsupported datacontenttype {content_type!r}, expected {CONTENT_TYPE!r}"
        )
    if known_types is not None and document["type"] not in known_types:
        raise InvalidMessageError(f"unknown event type {document['type']!r}")


def to_received_event(document: dict, data: Any) -> ReceivedEvent:
    return ReceivedEvent(
        id=document["id"],
        type=document["type"],
        source=document["source"],
        subject=document.get("subject", ""),
        time=document.get("time", ""),
        data=data,
        traceparent=document.get("traceparent", ""),
        raw=document,
    )
