"""The SNS topic to SQS queue fan-out: plan it, and create it idempotently.

For every enabled integration: a dead-letter queue, a queue whose redrive
policy points at it, a queue policy that lets only the topic send, and a
subscription whose filter policy lists the event types the handler declares.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

from integrations import conf, registry
from outbox import aws
from outbox import conf as outbox_conf

logger = logging.getLogger(__name__)

EVENT_TYPE_ATTRIBUTE = "event_type"
MAX_FILTER_VALUES = 150  # SNS limit on value combinations of one filter policy


@dataclass
class QueuePlan:
    integration: str
    queue_name: str
    dlq_name: str
    event_types: list[str]
    filter_policy: dict
    queue_attributes: dict[str, str]
    dlq_attributes: dict[str, str]
    max_receive_count: int
    # Filled in by apply():
    queue_url: str = ""
    queue_arn: str = ""
    dlq_url: str = ""
    dlq_arn: str = ""
    subscription_arn: str = ""


@dataclass
class FanoutPlan:
    topic_name: str
    topic_arn: str = ""
    fifo: bool = False
    raw_message_delivery: bool = True
    queues: list[QueuePlan] = field(default_factory=list)


def queue_name(integration: str, dead_letter: bool = False) -> str:
    name = f"{conf.queue_prefix()}{integration}"
    if dead_letter:
        name += "-dlq"
    if outbox_conf.is_fifo_topic():
        name += ".fifo"
    return name


_queue_urls: dict[tuple, str] = {}


def queue_url(integration: str, dead_letter: bool = False) -> str:
    """Return the URL of an integration's queue or dead-letter queue."""
    name = queue_name(integration, dead_letter)
    key = (name, outbox_conf.get("AWS_REGION"), outbox_conf.get("AWS_ENDPOINT_URL"))
    if key not in _queue_urls:
        sqs = aws.client("sqs")
        try:
            _queue_urls[key] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist as error:
            raise ImproperlyConfigured(
                f"queue {name!r} of integration {integration!r} does not exist; "
                "run `python manage.py setup_fanout` first."
            ) from error
    return _queue_urls[key]


def forget_queue_urls() -> None:
    _queue_urls.clear()


def topic_name() -> str:
    arn = outbox_conf.get("TOPIC_ARN")
    if arn:
        return arn.rsplit(":", 1)[-1]
    return outbox_conf.get("TOPIC_NAME")


def build_plan() -> FanoutPlan:
    """Describe what setup_fanout creates, from settings and handlers alone."""
    fifo = outbox_conf.is_fifo_topic()
    plan = FanoutPlan(
        topic_name=topic_name(),
        topic_arn=outbox_conf.get("TOPIC_ARN") or "",
        fifo=fifo,
        raw_message_delivery=bool(conf.get("RAW_MESSAGE_DELIVERY")),
    )
    for name in registry.enabled_names():
        event_types = sorted(registry.event_types(name))
        if len(event_types) > MAX_FILTER_VALUES:
            raise ImproperlyConfigured(
                f"handler of {name!r} declares {len(event_types)} event types; an SNS "
                f"filter policy allows at most {MAX_FILTER_VALUES} values."
            )
        visibility = conf.queue_setting(name, "VISIBILITY_TIMEOUT")
        retention = conf.queue_setting(name, "MESSAGE_RETENTION")
        max_receives = conf.queue_setting(name, "MAX_RECEIVE_COUNT")
        queue_attributes = {
            "VisibilityTimeout": str(visibility),
            "MessageRetentionPeriod": str(retention),
        }
        dlq_attributes = {"MessageRetentionPeriod": str(conf.get_int("DLQ_RETENTION"))}
        if fifo:
            queue_attributes["FifoQueue"] = "true"
            dlq_attributes["FifoQueue"] = "true"
        plan.queues.append(
            QueuePlan(
                integration=name,
                queue_name=queue_name(name),
                dlq_name=queue_name(name, dead_letter=True),
                event_types=event_types,
                filter_policy={EVENT_TYPE_ATTRIBUTE: event_types},
                queue_attributes=queue_attributes,
                dlq_attributes=dlq_attributes,
                max_receive_count=max_receives,
            )
        )
    return plan


def queue_policy(queue_arn: str, topic_arn: str) -> dict:
    """Return a policy that lets only ``topic_arn`` send to the queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowOutboxTopic",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }


def apply(plan: FanoutPlan) -> FanoutPlan:
    """Create or update every resource in ``plan``; safe to run again."""
    sns = aws.client("sns")
    sqs = aws.client("sqs")
    plan.topic_arn = plan.topic_arn or aws.create_topic(plan.topic_name)
    existing = _subscriptions_by_endpoint(sns, plan.topic_arn)

    for queue in plan.queues:
        queue.dlq_url, queue.dlq_arn = _ensure_queue(sqs, queue.dlq_name, queue.dlq_attributes)
        attributes = dict(queue.queue_attributes)
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": queue.dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
        )
        queue.queue_url, queue.queue_arn = _ensure_queue(sqs, queue.queue_name, attributes)
        sqs.set_queue_attributes(
            QueueUrl=queue.queue_url,
            Attributes={"Policy": json.dumps(queue_policy(queue.queue_arn, plan.topic_arn))},
        )
        queue.subscription_arn = _ensure_subscription(
            sns, plan, queue, existing.get(queue.queue_arn)
        )
        logger.info(
            "fan-out ready",
            extra={"integration": queue.integration, "queue_url": queue.queue_url},
        )
    forget_queue_urls()
    return plan


def _ensure_queue(sqs, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        create_attributes = {k: v for k, v in attributes.items()}
        url = sqs.create_queue(QueueName=name, Attributes=create_attributes)["QueueUrl"]
    else:
        # FifoQueue cannot be changed after creation, so it is not re-sent.
        updatable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
        sqs.set_queue_attributes(QueueUrl=url, Attributes=updatable)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, arn["Attributes"]["QueueArn"]


def _subscriptions_by_endpoint(sns, topic_arn: str) -> dict[str, str]:
    subscriptions = {}
    paginator = sns.get_paginator("list_subscriptions_by_topic")
    for page in paginator.paginate(TopicArn=topic_arn):
        for subscription in page["Subscriptions"]:
            if subscription["Protocol"] == "sqs":
                subscriptions[subscription["Endpoint"]] = subscription["SubscriptionArn"]
    return subscriptions


def _ensure_subscription(sns, plan: FanoutPlan, queue: QueuePlan, existing_arn):
    attributes = {
        "FilterPolicy": json.dumps(queue.filter_policy),
        "FilterPolicyScope": "MessageAttributes",
        "RawMessageDelivery": "true" if plan.raw_message_delivery else "false",
    }
    if existing_arn and existing_arn != "PendingConfirmation":
        for name, value in attributes.items():
            sns.set_subscription_attributes(
                SubscriptionArn=existing_arn, AttributeName=name, AttributeValue=value
            )
        return existing_arn
    response = sns.subscribe(
        TopicArn=plan.topic_arn,
        Protocol="sqs",
        Endpoint=queue.queue_arn,
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    return response["SubscriptionArn"]
