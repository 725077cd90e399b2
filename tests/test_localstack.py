"""Size and character limits that LocalStack enforces like AWS and moto does not.

The ``localstack_only`` tests show the limit itself, so they run only under
``make test-localstack``. The others check that the relay and the encoder stay
inside the limit and run on both backends, but they only prove it on
LocalStack, because moto accepts what AWS rejects.
"""

import json

import pytest
from botocore.exceptions import ClientError

from outbox import aws, claimcheck
from outbox.api import record_event
from outbox.messages import encode_json
from outbox.models import OutboxEvent
from outbox.relay import Relay

SNS_MAX_BYTES = 262_144
# 90,000 euro signs are 270,000 UTF-8 bytes: over the SNS limit in bytes,
# under it in characters (which is what moto 5.2 counts).
WIDE_TEXT = "\u20ac" * 90_000

ENCODER_CASES = {
    "nul": "a\x00b",
    "control": "a\x01\x1fb",
    "noncharacter_ffff": "a\uffffb",
    "noncharacter_fffe": "a\ufffeb",
    "lone_high_surrogate": "a\ud800b",
    "lone_low_surrogate": "a\udfffb",
    "emoji": "launch \U0001f680 ok \U0001f44d\U0001f3fd",
    "markup": "<script>alert('x')</script> &amp; ]]> <![CDATA[ \"q\" ",
}


def relay_once():
    relay = Relay()
    try:
        return relay.run_once()
    finally:
        relay.close()


@pytest.fixture
def queue_url(aws_settings):
    name = f"{aws_settings.INTEGRATIONS['QUEUE_PREFIX']}limits"
    return aws.client("sqs").create_queue(QueueName=name)["QueueUrl"]


def test_wide_text_sizes():
    assert len(WIDE_TEXT) < SNS_MAX_BYTES
    assert len(WIDE_TEXT.encode("utf-8")) > SNS_MAX_BYTES


@pytest.mark.localstack_only
def test_sns_rejects_message_over_bytes(aws_settings):
    with pytest.raises(ClientError) as raised:
        aws.client("sns").publish(TopicArn=aws.topic_arn(), Message=WIDE_TEXT)

    assert raised.value.response["Error"]["Code"] == "InvalidParameter"


@pytest.mark.localstack_only
@pytest.mark.django_db
def test_relay_without_claim_check_rejected(aws_settings):
    aws_settings.OUTBOX = {**aws_settings.OUTBOX, "MAX_MESSAGE_BYTES": 1_048_576}
    event = record_event("test.wide_text", {"text": WIDE_TEXT})

    relay_once()

    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.PENDING
    assert event.attempts == 1
    assert "PublishBatch failed" in event.last_error


@pytest.mark.django_db
def test_relay_claim_checks_wide_text(aws_settings):
    event = record_event("test.wide_text", {"text": WIDE_TEXT})

    relay_once()

    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.PUBLISHED
    assert event.sns_message_id
    assert event.payload_key
    with claimcheck.get_storage().open(event.payload_key) as payload:
        stored = payload.read()
    assert json.loads(stored) == {"text": WIDE_TEXT}


@pytest.mark.localstack_only
@pytest.mark.parametrize("text", ["a\x00b", "a\uffffb"], ids=["nul", "ffff"])
def test_sqs_rejects_invalid_characters(queue_url, text):
    with pytest.raises(ClientError) as raised:
        aws.client("sqs").send_message(QueueUrl=queue_url, MessageBody=text)

    assert raised.value.response["Error"]["Code"] == "InvalidMessageContents"


@pytest.mark.parametrize("text", ENCODER_CASES.values(), ids=ENCODER_CASES.keys())
def test_encoded_body_round_trips_sqs(queue_url, text):
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=queue_url, MessageBody=encode_json({"text": text}))

    response = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)

    [message] = response["Messages"]
    assert json.loads(message["Body"]) == {"text": text}
