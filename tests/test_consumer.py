"""The consumer against moto's queues and local third-party servers."""

import hashlib
import json
import uuid

import pytest
from django.core.management import call_command
from django.utils import timezone

from integrations.consumer import Consumer
from integrations.models import Delivery
from outbox import aws
from outbox.api import record_event
from outbox.messages import build_message


def queue_of(fanout, name):
    return next(q for q in fanout.queues if q.integration == name)


def consume(name):
    consumer = Consumer(name)
    try:
        while consumer.poll(wait_seconds=0):
            pass
    finally:
        consumer.close()


def queue_depth(url):
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.mark.django_db(transaction=True)
def test_signup_reaches_each_third_party_exactly(fanout, third_parties):
    event = record_event(
        "user.signed_up", {"user_id": 7, "email": "Zoe@Example.org", "name": "Zoë <b>&</b> 🚀"},
        subject=7,
    )
    call_command("relay_outbox", "--once")
    for name in ("heap", "mailchimp", "slack"):
        consume(name)

    [heap] = third_parties.heap
    assert json.loads(heap.get_data()) == {
        "app_id": "app-1",
        "identity": "7",
        "event": "user.signed_up",
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "properties": {"user_id": 7},
        "idempotency_key": str(event.id),
    }
    [member] = third_parties.mailchimp
    expected_hash = hashlib.md5(b"zoe@example.org").hexdigest()
    assert member.path == f"/mailchimp/3.0/lists/list-1/members/{expected_hash}"
    assert member.method == "PUT"
    assert json.loads(member.get_data()) == {
        "email_address": "Zoe@Example.org",
        "status_if_new": "subscribed",
        "merge_fields": {"FNAME": "Zoë <b>&</b> 🚀"},
    }
    assert member.authorization.parameters["password"] == "key-us1"
    [slack] = third_parties.slack
    assert json.loads(slack.get_data()) == {
        "text": "New signup: Zoë &lt;b&gt;&amp;&lt;/b&gt; 🚀 (user 7)"
    }
    assert heap.headers["User-Agent"].startswith("django-outbox-integrations/")
    for name in ("heap", "mailchimp", "slack"):
        assert queue_depth(queue_of(fanout, name).queue_url) == 0
    assert Delivery.objects.filter(status="delivered").count() == 3


@pytest.mark.django_db(transaction=True)
def test_second_copy_of_delivered_event_skipped(fanout, third_parties):
    record_event("user.signed_up", {"user_id": 1, "email": "a@example.com"}, subject=1)
    call_command("relay_outbox", "--once")
    consume("slack")
    # A relay that crashed before recording its publish sends the event again.
    from outbox.models import OutboxEvent

    OutboxEvent.objects.update(status="pending", claimed_until=None)
    call_command("relay_outbox", "--once")
    consume("slack")

    assert len(third_parties.slack) == 1
    delivery = Delivery.objects.get(integration="slack")
    assert delivery.status == "delivered"
    assert delivery.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_sns_envelope_accepted_like_raw(fanout, third_parties):
    event = record_event("user.logged_in", {"user_id": 3}, subject=3)
    message = build_message(event, 262_144, "p/")
    envelope = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": fanout.topic_arn,
        "Message": message.body,
        "Timestamp": timezone.now().isoformat(),
        "MessageAttributes": {"event_type": {"Type": "String", "Value": event.type}},
    }
    aws.client("sqs").send_message(
        QueueUrl=queue_of(fanout, "heap").queue_url, MessageBody=json.dumps(envelope)
    )
    consume("heap")

    [request] = third_parties.heap
    assert json.loads(request.get_data())["idempotency_key"] == str(event.id)


@pytest.mark.django_db(transaction=True)
def test_console_transport_prints_instead_of_calling(fanout, capsys):
    record_event("user.logged_in", {"user_id": 5}, subject=5)
    call_command("relay_outbox", "--once")
    consume("heap")

    output = capsys.readouterr().out
    assert "[heap console] POST https://heapanalytics.com/api/track" in output
    assert Delivery.objects.get().status == "delivered"


@pytest.mark.django_db(transaction=True)
def test_unknown_integration_name_fails_clearly(aws_settings):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="unknown integration 'hubspot'"):
        call_command("consume_integration", "hubspot", "--once")


@pytest.mark.django_db(transaction=True)
def test_missing_queue_tells_to_run_setup(aws_settings):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="run `python manage.py setup_fanout`"):
        call_command("consume_integration", "heap", "--once")
