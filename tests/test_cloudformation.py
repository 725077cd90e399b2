"""``setup_fanout --format cloudformation`` against what ``setup_fanout``
created on the moto server.

moto's CloudFormation cannot create queue policies or subscriptions, so the
template is not deployed. Its intrinsic functions are resolved against the
resources ``setup_fanout`` created instead, and every property is compared
with what SQS and SNS report for them. cfn-lint checks the template against
CloudFormation's resource schemas.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from integrations import fanout as fanout_module
from integrations.cloudformation import TOPIC_ID, logical_id
from outbox import aws


def template_from_command() -> dict:
    output = io.StringIO()
    call_command("setup_fanout", "--format", "cloudformation", stdout=output)
    return json.loads(output.getvalue())


def apply_fanout() -> fanout_module.FanoutPlan:
    """Create the fan-out as ``setup_fanout`` does, returning resource ids."""
    return fanout_module.apply(fanout_module.build_plan())


def physical_ids(plan: fanout_module.FanoutPlan) -> dict[tuple[str, str], str]:
    """Map (logical id, "Ref" or "Arn") to the created resource's id."""
    ids = {(TOPIC_ID, "Ref"): plan.topic_arn}
    for queue in plan.queues:
        prefix = logical_id(queue.integration)
        ids[(f"{prefix}Queue", "Ref")] = queue.queue_url
        ids[(f"{prefix}Queue", "Arn")] = queue.queue_arn
        ids[(f"{prefix}DeadLetterQueue", "Ref")] = queue.dlq_url
        ids[(f"{prefix}DeadLetterQueue", "Arn")] = queue.dlq_arn
    return ids


def resolve(value, ids):
    """Replace ``Ref`` and ``Fn::GetAtt ... Arn`` with the created resources' ids."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return ids[(value["Ref"], "Ref")]
        if set(value) == {"Fn::GetAtt"}:
            resource, attribute = value["Fn::GetAtt"]
            return ids[(resource, attribute)]
        return {key: resolve(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, ids) for item in value]
    return value


def queue_attributes(url: str) -> dict[str, str]:
    response = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return response["Attributes"]


def subscription_attributes(arn: str) -> dict[str, str]:
    return aws.client("sns").get_subscription_attributes(SubscriptionArn=arn)["Attributes"]


@pytest.fixture(params=["standard", "fifo"])
def topic_kind(request, aws_settings):
    if request.param == "fifo":
        aws_settings.OUTBOX = {
            **aws_settings.OUTBOX,
            "TOPIC_NAME": aws_settings.OUTBOX["TOPIC_NAME"] + ".fifo",
        }
    return request.param


def check_topic_matches_created(plan, template, ids, topic_kind):
    topic = template["Resources"][TOPIC_ID]
    attributes = aws.client("sns").get_topic_attributes(TopicArn=plan.topic_arn)
    assert topic["Type"] == "AWS::SNS::Topic"
    assert plan.topic_arn.endswith(":" + topic["Properties"]["TopicName"])
    expected_fifo = "true" if topic_kind == "fifo" else "false"
    assert str(topic["Properties"].get("FifoTopic", False)).lower() == expected_fifo
    assert attributes["Attributes"].get("FifoTopic", "false") == expected_fifo


def check_queues_match_created(plan, template, ids, topic_kind):
    resources = template["Resources"]
    assert plan.queues
    for queue in plan.queues:
        prefix = logical_id(queue.integration)
        properties = resources[f"{prefix}Queue"]["Properties"]
        actual = queue_attributes(queue.queue_url)

        assert queue.queue_url.endswith("/" + properties["QueueName"])
        assert actual["VisibilityTimeout"] == str(properties["VisibilityTimeout"])
        assert actual["MessageRetentionPeriod"] == str(properties["MessageRetentionPeriod"])
        assert actual.get("FifoQueue", "false") == str(
            properties.get("FifoQueue", False)
        ).lower()

        redrive = json.loads(actual["RedrivePolicy"])
        expected = resolve(properties["RedrivePolicy"], ids)
        assert redrive["deadLetterTargetArn"] == expected["deadLetterTargetArn"]
        assert int(redrive["maxReceiveCount"]) == expected["maxReceiveCount"]


def check_dead_letter_queues_match(plan, template, ids, topic_kind):
    for queue in plan.queues:
        prefix = logical_id(queue.integration)
        properties = template["Resources"][f"{prefix}DeadLetterQueue"]["Properties"]
        actual = queue_attributes(queue.dlq_url)

        assert queue.dlq_url.endswith("/" + properties["QueueName"])
        assert actual["MessageRetentionPeriod"] == str(properties["MessageRetentionPeriod"])
        assert "RedrivePolicy" not in actual


def check_queue_policies_match(plan, template, ids, topic_kind):
    for queue in plan.queues:
        prefix = logical_id(queue.integration)
        properties = template["Resources"][f"{prefix}QueuePolicy"]["Properties"]
        actual = json.loads(queue_attributes(queue.queue_url)["Policy"])

        assert resolve(properties["Queues"], ids) == [queue.queue_url]
        assert resolve(properties["PolicyDocument"], ids) == actual


def check_subscriptions_match(plan, template, ids, topic_kind):
    for queue in plan.queues:
        prefix = logical_id(queue.integration)
        properties = resolve(
            template["Resources"][f"{prefix}Subscription"]["Properties"], ids
        )
        actual = subscription_attributes(queue.subscription_arn)

        assert properties["TopicArn"] == actual["TopicArn"]
        assert properties["Endpoint"] == actual["Endpoint"]
        assert properties["Protocol"] == actual["Protocol"]
        assert properties["FilterPolicy"] == json.loads(actual["FilterPolicy"])
        assert properties["FilterPolicyScope"] == actual["FilterPolicyScope"]
        assert str(properties["RawMessageDelivery"]).lower() == actual["RawMessageDelivery"]


def check_no_extra_resources(plan, template, ids, topic_kind):
    expected = {TOPIC_ID}
    for queue in plan.queues:
        prefix = logical_id(queue.integration)
        expected |= {
            f"{prefix}Queue", f"{prefix}DeadLetterQueue",
            f"{prefix}QueuePolicy", f"{prefix}Subscription",
        }
    assert set(template["Resources"]) == expected


def test_template_matches_created_fanout(topic_kind):
    plan = apply_fanout()
    template = template_from_command()
    ids = physical_ids(plan)

    check_topic_matches_created(plan, template, ids, topic_kind)
    check_queues_match_created(plan, template, ids, topic_kind)
    check_dead_letter_queues_match(plan, template, ids, topic_kind)
    check_queue_policies_match(plan, template, ids, topic_kind)
    check_subscriptions_match(plan, template, ids, topic_kind)
    check_no_extra_resources(plan, template, ids, topic_kind)


def test_template_passes_cfn_lint(aws_settings):
    from cfnlint.api import lint_all

    output = io.StringIO()
    call_command("setup_fanout", "--format", "cloudformation", stdout=output)
    matches = lint_all(output.getvalue())

    # Informational rules (I...) ask for optional metadata; errors and
    # warnings mean CloudFormation would reject or misread the template.
    problems = [str(match) for match in matches if match.rule.id[0] in "EW"]
    assert problems == []


def test_template_uses_configured_topic_arn(aws_settings):
    arn = "arn:aws:sns:us-east-1:123456789012:existing-topic"
    aws_settings.OUTBOX = {**aws_settings.OUTBOX, "TOPIC_ARN": arn}

    template = template_from_command()

    assert TOPIC_ID not in template["Resources"]
    subscriptions = [
        resource["Properties"]["TopicArn"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SNS::Subscription"
    ]
    assert subscriptions
    assert set(subscriptions) == {arn}


def test_template_creates_no_resources(aws_settings):
    template_from_command()

    topic_name = aws_settings.OUTBOX["TOPIC_NAME"]
    topics = aws.client("sns").list_topics()["Topics"]
    assert [t for t in topics if t["TopicArn"].endswith(":" + topic_name)] == []


def test_logical_id_joins_name_parts():
    assert logical_id("my-crm") == "MyCrm"
    assert logical_id("data_lake") == "DataLake"
    assert logical_id("heap") == "Heap"
