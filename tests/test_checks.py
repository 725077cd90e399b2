"""System checks of outbox and integration settings."""

import json

import pytest
from django.core import checks
from django.db import connection

from integrations import fanout as fanout_module
from integrations.checks import check_dead_letter_queues, check_integrations
from outbox import aws
from outbox.checks import check_outbox_settings, check_relay_database


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_no_topic_is_an_error(settings):
    settings.OUTBOX = {**settings.OUTBOX, "TOPIC_NAME": None, "TOPIC_ARN": None}

    assert "outbox.E003" in ids(check_outbox_settings(None))


def test_default_settings_pass(settings):
    assert check_outbox_settings(None) == []
    assert check_integrations(None) == []


def test_http_transport_without_credentials(settings):
    settings.INTEGRATIONS = {
        **settings.INTEGRATIONS,
        "HANDLERS": {
            "heap": {
                "CLASS": "integrations.handlers.heap.HeapHandler",
                "OPTIONS": {"TRANSPORT": "http"},
            },
        },
    }

    messages = check_integrations(None)

    assert ids(messages) == ["integrations.E003"]
    assert "APP_ID" in messages[0].msg


def test_disabled_integration_is_not_checked(settings):
    settings.INTEGRATIONS = {
        **settings.INTEGRATIONS,
        "HANDLERS": {
            "heap": {
                "CLASS": "integrations.handlers.heap.HeapHandler",
                "OPTIONS": {"TRANSPORT": "http"},
                "ENABLED": False,
            },
        },
    }

    assert check_integrations(None) == []


def test_visibility_shorter_than_handler_timeout(settings):
    settings.INTEGRATIONS = {
        **settings.INTEGRATIONS,
        "HANDLERS": {
            "slack": {
                "CLASS": "integrations.handlers.slack.SlackHandler",
                "OPTIONS": {"TIMEOUT": 30},
                "VISIBILITY_TIMEOUT": 10,
            },
        },
    }

    assert ids(check_integrations(None)) == ["integrations.E005"]


def test_several_relays_on_sqlite(settings):
    settings.OUTBOX = {**settings.OUTBOX, "RELAY_COUNT": 3}
    expected = ["outbox.E005"] if connection.vendor == "sqlite" else []

    assert ids(check_relay_database(None)) == expected


def test_one_relay_on_sqlite_passes(settings):
    settings.OUTBOX = {**settings.OUTBOX, "RELAY_COUNT": 1}

    assert check_relay_database(None) == []


def test_relay_count_must_be_positive(settings):
    settings.OUTBOX = {**settings.OUTBOX, "RELAY_COUNT": 0}

    assert "outbox.E002" in ids(check_outbox_settings(None))


def test_queue_check_is_deploy_only():
    default = checks.registry.registry.get_checks(include_deployment_checks=False)
    deploy = checks.registry.registry.get_checks(include_deployment_checks=True)

    assert check_dead_letter_queues not in default
    assert check_dead_letter_queues in deploy


def test_queue_check_passes_after_setup(fanout):
    assert check_dead_letter_queues(None) == []


def test_missing_dead_letter_queue(fanout):
    sqs = aws.client("sqs")
    sqs.delete_queue(QueueUrl=fanout_module.queue_url("slack", dead_letter=True))

    messages = check_dead_letter_queues(None)

    assert ids(messages) == ["integrations.E006"]
    assert "dead-letter queue" in messages[0].msg


def test_queue_redriving_elsewhere(fanout):
    sqs = aws.client("sqs")
    other = next(queue for queue in fanout.queues if queue.integration == "slack")
    sqs.set_queue_attributes(
        QueueUrl=fanout_module.queue_url("heap"),
        Attributes={"RedrivePolicy": json.dumps({
            "deadLetterTargetArn": other.dlq_arn, "maxReceiveCount": "5",
        })},
    )

    assert ids(check_dead_letter_queues(None)) == ["integrations.E007"]


def test_queue_check_warns_when_aws_unreachable(aws_settings):
    aws_settings.OUTBOX = {**aws_settings.OUTBOX, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    aws.reset_clients()

    messages = check_dead_letter_queues(None)

    assert set(ids(messages)) == {"integrations.W001"}


@pytest.fixture(autouse=True)
def _reset_clients():
    yield
    aws.reset_clients()
    fanout_module.forget_queue_urls()


@pytest.mark.parametrize(
    "overrides, expected_id",
    [
        ({"CONCURRENCY": 0}, "integrations.E008"),
        ({"WAIT_TIME_SECONDS": 50}, "integrations.E008"),
        ({"RETRY_BACKOFF_BASE": -3}, "integrations.E008"),
        ({"MAX_RECEIVE_COUNT": 0}, "integrations.E008"),
        ({"QUEUE_PREFIX": "bad prefix!"}, "integrations.E008"),
        ({"QUEUE_PREFIX": 7}, "integrations.E008"),
        ({"FOO": 1}, "integrations.W002"),
    ],
)
def test_integration_settings_checked(settings, overrides, expected_id):
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, **overrides}
    from django.core import checks as django_checks

    found = [message.id for message in django_checks.run_checks()]

    assert expected_id in found


@pytest.mark.parametrize("name", ["bad topic/name!", "x" * 257, "events.fifo.fifo"])
def test_invalid_topic_name_checked(settings, name):
    settings.OUTBOX = {**settings.OUTBOX, "TOPIC_NAME": name}
    from django.core import checks as django_checks

    found = [message.id for message in django_checks.run_checks()]

    assert "outbox.E006" in found
