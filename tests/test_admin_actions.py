"""Retry, replay and redrive from the admin, against the moto server."""

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from integrations import fanout as fanout_module
from integrations.consumer import DEAD_LETTER_REASON_ATTRIBUTE
from integrations.models import Delivery
from outbox import aws
from outbox.messages import build_attributes, build_cloudevent, encode_json
from outbox.models import OutboxEvent
from tests.admin_helpers import (
    PASSWORD, changelist_url, deliver, failed, login_event, make_staff,
    published, signup_event,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def run_action(client, action, events, **fields):
    data = {
        "action": action, "_selected_action": [str(e.id) for e in events],
        "index": "0", "confirm": "yes", **fields,
    }
    return client.post(changelist_url(), data, follow=True)


def receive_all(integration, dead_letter=False, wait=0):
    url = fanout_module.queue_url(integration, dead_letter=dead_letter)
    response = aws.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
        MessageAttributeNames=["All"], VisibilityTimeout=0,
    )
    return response.get("Messages", [])


def dead_letter(event, integration, reason="HTTP 400 from mailchimp"):
    attributes = build_attributes(event)
    attributes[DEAD_LETTER_REASON_ATTRIBUTE] = {"DataType": "String", "StringValue": reason}
    return aws.client("sqs").send_message(
        QueueUrl=fanout_module.queue_url(integration, dead_letter=True),
        MessageBody=encode_json(build_cloudevent(event)),
        MessageAttributes=attributes,
    )["MessageId"]


def log_messages(event=None):
    entries = LogEntry.objects.all()
    if event is not None:
        entries = entries.filter(object_id=str(event.id))
    return [entry.change_message for entry in entries]


def test_retry_asks_for_confirmation(operator):
    event = signup_event(**failed())

    response = operator.post(changelist_url(), {
        "action": "retry_events", "_selected_action": [str(event.id)], "index": "0",
    })
    event.refresh_from_db()

    assert response.status_code == 200
    assert b"Yes, retry failed events" in response.content
    assert event.status == "failed"


def test_retry_resets_failed_events(operator):
    event = signup_event(**failed())
    other = signup_event(subject="8", **published())

    response = run_action(operator, "retry_events", [event, other], reason="topic fixed")
    event.refresh_from_db()
    other.refresh_from_db()

    assert event.status == "pending"
    assert event.attempts == 0
    assert other.status == "published"
    assert b"Retried 1 event(s)" in response.content
    assert b"1 selected event(s) were not failed" in response.content
    assert log_messages(event) == [
        "Retried: status failed to pending, attempts reset. Reason: topic fixed"
    ]
    assert log_messages(other) == []


def test_replay_sets_published_pending(operator):
    event = signup_event(**published())

    response = run_action(operator, "replay_events", [event])
    event.refresh_from_db()

    assert event.status == "pending"
    assert b"Replayed 1 event(s)" in response.content
    assert len(log_messages(event)) == 1


def test_replay_to_one_integration_sends_to_queue(operator, fanout):
    signup = signup_event(**published())
    login = login_event(**published())
    delivered = signup_event(subject="8", **published())
    deliver(delivered, "mailchimp", Delivery.Status.DELIVERED)

    response = run_action(
        operator, "replay_to_integration", [signup, login, delivered],
        integration="mailchimp", reason="API key fixed",
    )
    messages = receive_all("mailchimp")

    assert b"Sent 1 event(s) to the queue of mailchimp" in response.content
    assert b"1 not subscribed, 1 already delivered" in response.content
    assert [json.loads(m["Body"])["id"] for m in messages] == [str(signup.id)]
    assert messages[0]["MessageAttributes"]["event_type"]["StringValue"] == "user.signed_up"
    assert receive_all("slack") == []
    assert receive_all("heap") == []
    assert log_messages(signup) == [
        "Replayed to integration mailchimp by sending to its queue. Reason: API key fixed"
    ]


def test_redrive_selected_events_moves_only_them(operator, fanout):
    chosen = signup_event(**published())
    left = signup_event(subject="8", **published())
    dead_letter(chosen, "slack")
    dead_letter(left, "slack")

    response = run_action(operator, "redrive_events", [chosen], integration="slack")
    queue = receive_all("slack")
    remaining = receive_all("slack", dead_letter=True)

    assert b"Moved 1 message(s) from the dead-letter queue of slack" in response.content
    assert [json.loads(m["Body"])["id"] for m in queue] == [str(chosen.id)]
    assert DEAD_LETTER_REASON_ATTRIBUTE not in queue[0]["MessageAttributes"]
    assert queue[0]["MessageAttributes"]["event_type"]["StringValue"] == "user.signed_up"
    assert [json.loads(m["Body"])["id"] for m in remaining] == [str(left.id)]
    assert len(log_messages(chosen)) == 1
    assert log_messages(left) == []


def dead_letters_url(integration):
    return reverse("admin:outbox_outboxevent_dead_letters", args=[integration])


def test_dead_letter_page_lists_messages(operator, fanout):
    event = signup_event(**published())
    message_id = dead_letter(event, "heap", reason="HTTP 400 from heap")

    page = operator.get(dead_letters_url("heap")).content.decode()

    assert message_id in page
    assert str(event.id) in page
    assert "HTTP 400 from heap" in page
    assert len(receive_all("heap", dead_letter=True)) == 1


def test_redrive_all_moves_every_message(operator, fanout):
    events = [signup_event(subject=str(n), **published()) for n in range(12)]
    for event in events:
        dead_letter(event, "heap")

    confirm = operator.post(dead_letters_url("heap"), {"scope": "all"})
    response = operator.post(
        dead_letters_url("heap"), {"scope": "all", "confirm": "yes"}, follow=True
    )
    moved = receive_all("heap") + receive_all("heap")

    assert b"Move every message" in confirm.content
    assert b"Moved 12 message(s)" in response.content
    assert receive_all("heap", dead_letter=True) == []
    assert len({m["MessageId"] for m in moved}) >= 10
    assert "Redrove 12 message(s)" in log_messages()[0]


def test_redrive_by_message_id(operator, fanout):
    first = signup_event(**published())
    second = signup_event(subject="8", **published())
    first_id = dead_letter(first, "heap")
    dead_letter(second, "heap")

    operator.post(
        dead_letters_url("heap"),
        {"scope": "selected", "message_id": [first_id], "confirm": "yes"},
    )
    queue = receive_all("heap")
    remaining = receive_all("heap", dead_letter=True)

    assert [json.loads(m["Body"])["id"] for m in queue] == [str(first.id)]
    assert [json.loads(m["Body"])["id"] for m in remaining] == [str(second.id)]


def test_view_only_staff_cannot_redrive(client, fanout):
    make_staff("viewer", "outbox.view_outboxevent")
    client.login(username="viewer", password=PASSWORD)
    dead_letter(signup_event(**published()), "heap")

    page = client.get(dead_letters_url("heap"))
    post = client.post(dead_letters_url("heap"), {"scope": "all", "confirm": "yes"})

    assert b"Redrive all" not in page.content
    assert post.status_code == 403
    assert len(receive_all("heap", dead_letter=True)) == 1


def test_retried_event_is_published_again(operator, fanout):
    import threading

    from outbox.relay import Relay

    event = signup_event(**failed())
    run_action(operator, "retry_events", [event])
    relay = Relay()
    try:
        relay.run(threading.Event(), interval=0, once=True)
    finally:
        relay.close()
    event.refresh_from_db()

    assert event.status == OutboxEvent.Status.PUBLISHED
    # The operator's own signup and login events are published too, and
    # LocalStack delivers from SNS to SQS asynchronously, so this polls.
    received = set()
    for _ in range(20):
        received |= {json.loads(m["Body"])["id"] for m in receive_all("heap", wait=1)}
        if str(event.id) in received:
            break

    assert str(event.id) in received


def test_dead_letter_reason_masked_for_viewer(client, fanout):
    make_staff("viewer", "outbox.view_outboxevent")
    client.login(username="viewer", password=PASSWORD)
    dead_letter(signup_event(**published()), "mailchimp",
                reason="HTTP 400: ada@example.com looks fake")

    page = client.get(dead_letters_url("mailchimp")).content.decode()

    assert "ada@example.com" not in page
    assert "a***@***.com looks fake" in page
