"""setup_fanout builds the topic, queues and filtered subscriptions idempotently."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from integrations import fanout as fanout_module
from outbox import aws


def subscriptions(topic_arn):
    return aws.client("sns").list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]


def test_setup_fanout_creates_everything(fanout, settings):
    sqs = aws.client("sqs")
    sns = aws.client("sns")
    assert [q.integration for q in fanout.queues] == ["heap", "mailchimp", "slack"]

    for queue in fanout.queues:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue.queue_url, AttributeNames=["All"]
        )["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == queue.dlq_arn
        assert int(redrive["maxReceiveCount"]) == 5
        assert attributes["VisibilityTimeout"] == "60"
        assert attributes["MessageRetentionPeriod"] == "345600"
        policy = json.loads(attributes["Policy"])
        statement = policy["Statement"][0]
        assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
        assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == fanout.topic_arn

        subscription = sns.get_subscription_attributes(
            SubscriptionArn=queue.subscription_arn
        )["Attributes"]
        assert subscription["Endpoint"] == queue.queue_arn
        assert subscription["RawMessageDelivery"] == "true"
        assert json.loads(subscription["FilterPolicy"]) == queue.filter_policy

    policies = {q.integration: q.filter_policy for q in fanout.queues}
    assert policies["heap"] == {"event_type": ["user.logged_in", "user.signed_up"]}
    assert policies["mailchimp"] == {"event_type": ["user.signed_up"]}
    assert policies["slack"] == {"event_type": ["user.signed_up"]}


def test_setup_fanout_runs_again_without_duplicates(fanout):
    again = fanout_module.apply(fanout_module.build_plan())

    assert again.topic_arn == fanout.topic_arn
    assert [q.queue_url for q in again.queues] == [q.queue_url for q in fanout.queues]
    assert [q.subscription_arn for q in again.queues] == [
        q.subscription_arn for q in fanout.queues
    ]
    assert len(subscriptions(fanout.topic_arn)) == 3


def test_setup_fanout_applies_changed_settings(fanout, settings):
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "VISIBILITY_TIMEOUT": 120}
    again = fanout_module.apply(fanout_module.build_plan())

    heap = next(q for q in again.queues if q.integration == "heap")
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=heap.queue_url, AttributeNames=["VisibilityTimeout"]
    )["Attributes"]
    assert attributes["VisibilityTimeout"] == "120"


def test_dry_run_changes_nothing(aws_settings):
    output = io.StringIO()
    call_command("setup_fanout", "--dry-run", stdout=output)

    assert "would subscribe" in output.getvalue()
    queue_name = fanout_module.queue_name("heap")
    sqs = aws.client("sqs")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=queue_name)


def test_command_prints_arns_and_urls(aws_settings):
    output = io.StringIO()
    call_command("setup_fanout", stdout=output)

    text = output.getvalue()
    assert "arn:aws:sns:us-east-1:" in text
    assert fanout_module.queue_name("slack") in text
    assert "fan-out ready" in text


def test_disabled_integration_gets_no_queue(aws_settings):
    handlers = {
        name: dict(entry) for name, entry in fanout_module.conf.handler_entries().items()
    }
    handlers["slack"]["ENABLED"] = False
    aws_settings.INTEGRATIONS = {**aws_settings.INTEGRATIONS, "HANDLERS": handlers}

    plan = fanout_module.build_plan()

    assert [q.integration for q in plan.queues] == ["heap", "mailchimp"]


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("VISIBILITY_TIMEOUT", 50_000, "from 0 to 43200, got 50000"),
        ("MESSAGE_RETENTION", 10, "from 60 to 1209600, got 10"),
        ("MAX_RECEIVE_COUNT", "five", "from 1 to 1000, got 'five'"),
        ("MAX_RECEIVE_COUNT", 0, "from 1 to 1000, got 0"),
        ("QUEUE_PREFIX", "bad prefix!", "QUEUE_PREFIX'] must be up to 30 letters"),
    ],
)
def test_invalid_queue_settings_name_the_value(aws_settings, key, value, message):
    aws_settings.INTEGRATIONS = {**aws_settings.INTEGRATIONS, key: value}
    with pytest.raises(CommandError, match=message):
        call_command("setup_fanout", "--dry-run", stdout=io.StringIO())


def test_unknown_handler_class_names_the_path(aws_settings):
    aws_settings.INTEGRATIONS = {
        **aws_settings.INTEGRATIONS,
        "HANDLERS": {"crm": {"CLASS": "nowhere.CRMHandler"}},
    }
    with pytest.raises(CommandError, match="'nowhere.CRMHandler'"):
        call_command("setup_fanout", "--dry-run", stdout=io.StringIO())
