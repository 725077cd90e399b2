"""A CloudFormation template of the fan-out, built from the same plan that
``setup_fanout`` applies (``integrations.fanout.build_plan``).

The template creates the SNS topic unless ``OUTBOX["TOPIC_ARN"]`` names an
existing one. Per enabled integration it creates the dead-letter queue, the
queue with its redrive policy, the queue policy that lets only the topic
send, and the subscription with its filter policy and raw message delivery.
"""

from __future__ import annotations

import json
import re

from django.core.exceptions import ImproperlyConfigured

from integrations.fanout import FanoutPlan, QueuePlan, queue_policy

TEMPLATE_FORMAT_VERSION = "2010-09-09"
TOPIC_ID = "OutboxTopic"
# Queues can contain undelivered and dead-lettered messages, so deleting the
# stack or replacing a queue keeps the old queue for an operator to drain.
KEEP_ON_DELETE = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}


def build_template(plan: FanoutPlan) -> dict:
    """Return the CloudFormation template of ``plan`` as a dictionary."""
    resources: dict[str, dict] = {}
    outputs: dict[str, dict] = {}
    if plan.topic_arn:
        topic_ref: object = plan.topic_arn
    else:
        resources[TOPIC_ID] = topic_resource(plan)
        topic_ref = {"Ref": TOPIC_ID}
        outputs["TopicArn"] = {"Value": topic_ref}

    for queue in plan.queues:
        prefix = logical_id(queue.integration)
        queue_resources = integration_resources(plan, queue, prefix, topic_ref)
        duplicated = set(queue_resources) & set(resources)
        if duplicated:
            raise ImproperlyConfigured(
                f"integration {queue.integration!r} maps to the CloudFormation "
                f"logical id {prefix!r} of another integration; rename one of them."
            )
        resources.update(queue_resources)
        outputs[f"{prefix}QueueUrl"] = {"Value": {"Ref": f"{prefix}Queue"}}
        outputs[f"{prefix}DeadLetterQueueUrl"] = {
            "Value": {"Ref": f"{prefix}DeadLetterQueue"}
        }

    return {
        "AWSTemplateFormatVersion": TEMPLATE_FORMAT_VERSION,
        "Description": f"Outbox fan-out from SNS topic {plan.topic_name}",
        "Resources": resources,
        "Outputs": outputs,
    }


def render(plan: FanoutPlan) -> str:
    """Return the template as JSON, which CloudFormation accepts like YAML."""
    return json.dumps(build_template(plan), indent=2, sort_keys=False)


def logical_id(integration: str) -> str:
    """Return an alphanumeric CloudFormation id, e.g. ``my-crm`` -> ``MyCrm``."""
    parts = re.split(r"[-_]", integration)
    return "".join(part[:1].upper() + part[1:] for part in parts if part)


def topic_resource(plan: FanoutPlan) -> dict:
    properties: dict[str, object] = {"TopicName": plan.topic_name}
    if plan.fifo:
        properties["FifoTopic"] = True
        properties["ContentBasedDeduplication"] = False
    return {"Type": "AWS::SNS::Topic", "Properties": properties}


def integration_resources(
    plan: FanoutPlan, queue: QueuePlan, prefix: str, topic_ref: object
) -> dict[str, dict]:
    dlq_id = f"{prefix}DeadLetterQueue"
    queue_id = f"{prefix}Queue"
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}

    queue_properties = queue_properties_of(queue.queue_name, queue.queue_attributes)
    queue_properties["RedrivePolicy"] = {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": queue.max_receive_count,
    }
    return {
        dlq_id: {
            "Type": "AWS::SQS::Queue",
            "Properties": queue_properties_of(queue.dlq_name, queue.dlq_attributes),
            **KEEP_ON_DELETE,
        },
        queue_id: {
            "Type": "AWS::SQS::Queue",
            "Properties": queue_properties,
            **KEEP_ON_DELETE,
        },
        f"{prefix}QueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": queue_id}],
                "PolicyDocument": queue_policy(queue_arn, topic_ref),
            },
        },
        f"{prefix}Subscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "TopicArn": topic_ref,
                "Protocol": "sqs",
                "Endpoint": queue_arn,
                "FilterPolicyScope": "MessageAttributes",
                "FilterPolicy": queue.filter_policy,
                "RawMessageDelivery": plan.raw_message_delivery,
            },
        },
    }


def queue_properties_of(name: str, attributes: dict[str, str]) -> dict[str, object]:
    """Translate SQS API attributes (all strings) to typed queue properties."""
    properties: dict[str, object] = {"QueueName": name}
    for key, value in attributes.items():
        if value in ("true", "false"):
            properties[key] = value == "true"
        elif value.isdigit():
            properties[key] = int(value)
        else:
            properties[key] = value
    return properties
