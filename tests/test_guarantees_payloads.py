"""Payloads of any size and content reach the third party unchanged.

moto's server counts message size in characters and accepts characters real
SQS rejects, so these tests measure the UTF-8 bytes and check the characters
of each message themselves before the consumer reads it.
"""

import json
import re
import threading

import pytest
from django.urls import reverse

from integrations.consumer import Consumer
from outbox import aws
from outbox.api import record_event
from outbox.messages import message_size
from outbox.models import OutboxEvent
from outbox.relay import Relay

SQS_MAX_BYTES = 262_144
# The characters SQS accepts in a message body, from the SendMessage reference.
SQS_ALLOWED = re.compile("^[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")

USER_TEXTS = [
    "Ada Lovelace",
    "Zoë Ødegård-Łukasiewicz",
    "中文字符 日本語 한국어",
    "العربية עברית",
    "हिन्दी தமிழ்",
    "👩‍👩‍👧‍👦 🏳️‍🌈 👍🏽",
    "<script>alert('x')</script>",
    "&amp; &lt;b&gt; <b>bold</b> *not bold* _nor this_ `code`",
    '{"json": "inside", "quote": "\\""}',
    "line\nbreak\ttab\rreturn",
    "controls \x01\x02\x1b[31m\x7f\x85",
    "separators \u2028\u2029 bom \ufeff",
    "noncharacters \ufffe \uffff",
    "zero width \u200b\u200c\u200d and rtl \u202e",
    "'; DROP TABLE users; --",
]


def relay_all():
    relay = Relay()
    try:
        relay.run(threading.Event(), interval=0, once=True)
    finally:
        relay.close()


def peek(queue_url) -> list[dict]:
    """Receive every message without hiding it, to inspect what SQS holds."""
    response = aws.client("sqs").receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=1,
        VisibilityTimeout=0,
        MessageAttributeNames=["All"],
    )
    return response.get("Messages", [])


def sqs_size(message) -> int:
    attributes = {
        name: {
            "DataType": value["DataType"],
            "StringValue": value.get("StringValue", ""),
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return message_size(message["Body"], attributes)


def consume(name):
    consumer = Consumer(name)
    try:
        while consumer.poll(wait_seconds=1):
            pass
    finally:
        consumer.close()


def queue_of(fanout, name):
    return next(q.queue_url for q in fanout.queues if q.integration == name)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x" * 300_000, id="300,000 ASCII"),
        pytest.param("😀" * 100_000, id="100,000 emoji"),
    ],
)
def test_large_payload_round_trips_by_claim_check(
    postgres, transactional_db, fanout, third_parties, text
):
    event = record_event("user.logged_in", {"user_id": 7, "bio": text}, subject=7)

    relay_all()
    held = peek(queue_of(fanout, "heap"))
    consume("heap")

    event.refresh_from_db()
    assert len(held) == 1
    assert "dataref" in json.loads(held[0]["Body"])
    assert sqs_size(held[0]) <= SQS_MAX_BYTES
    assert event.payload_key
    tracked = json.loads(third_parties.heap[0].get_data())
    assert tracked["properties"]["bio"] == text
    assert tracked["idempotency_key"] == str(event.id)


def test_small_payload_travels_inline(
    postgres, transactional_db, fanout, third_parties
):
    record_event("user.logged_in", {"user_id": 7, "bio": "short"}, subject=7)

    relay_all()
    held = peek(queue_of(fanout, "heap"))

    assert "dataref" not in json.loads(held[0]["Body"])
    assert OutboxEvent.objects.get().payload_key == ""


def test_user_text_arrives_unchanged(postgres, transactional_db, fanout, third_parties):
    record_event("user.logged_in", {"user_id": 1, "texts": USER_TEXTS}, subject=1)

    relay_all()
    held = peek(queue_of(fanout, "heap"))
    consume("heap")

    assert SQS_ALLOWED.match(held[0]["Body"])
    received = json.loads(third_parties.heap[0].get_data())["properties"]["texts"]
    for sent, arrived in zip(USER_TEXTS, received, strict=True):
        assert arrived == sent


def sign_up(client, name):
    password = "correct-horse-battery-staple-42"
    return client.post(
        reverse("accounts:signup"),
        {
            "email": "zoe@example.com",
            "name": name,
            "password1": password,
            "password2": password,
        },
    )


def test_signup_form_name_reaches_mailchimp(
    postgres, transactional_db, client, fanout, third_parties
):
    # The signup form rejects control characters and browsers cannot send
    # lone surrogates, so this name mixes the kinds of text that remain,
    # including the noncharacters U+FFFE and U+FFFF that SQS rejects raw.
    name = "Zoë 中文 👩‍👩‍👧‍👦 <b>&amp;</b> \u2028\ufffe\uffff"

    response = sign_up(client, name)
    relay_all()
    held = peek(queue_of(fanout, "mailchimp"))
    consume("mailchimp")

    assert response.status_code == 302
    assert SQS_ALLOWED.match(held[0]["Body"])
    member = json.loads(third_parties.mailchimp[0].get_data())
    assert member["merge_fields"]["FNAME"] == name
