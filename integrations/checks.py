"""System checks that report bad integration configuration at start-up."""

import json

from botocore.exceptions import BotoCoreError, ClientError
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from integrations import conf, fanout, registry
from outbox import aws


@checks.register()
def check_integration_settings(app_configs, **kwargs):
    errors = []
    try:
        unknown = conf.unknown_keys()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="integrations.E001")]
    for key in unknown:
        errors.append(
            checks.Warning(
                f"INTEGRATIONS[{key!r}] is not a known setting and is ignored.",
                hint=f"Known settings: {', '.join(sorted(conf.DEFAULTS))}.",
                id="integrations.W002",
            )
        )
    for key in conf.INTEGER_RANGES:
        try:
            conf.get_int(key)
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id="integrations.E008"))
    try:
        conf.queue_prefix()
    except ImproperlyConfigured as error:
        errors.append(checks.Error(str(error), id="integrations.E008"))
    return errors


@checks.register()
def check_integrations(app_configs, **kwargs):
    try:
        names = registry.enabled_names()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="integrations.E001")]
    errors = []
    for name in names:
        try:
            handler = registry.create_handler(name)
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id="integrations.E002"))
            continue
        missing = handler.missing_options()
        if missing and handler.transport == "http":
            errors.append(
                checks.Error(
                    f"integration {name!r} uses the http transport but "
                    f"OPTIONS {', '.join(missing)} are not set.",
                    hint="Set them, or remove OPTIONS['TRANSPORT'] to fall back to "
                    "the console transport.",
                    id="integrations.E003",
                )
            )
        for key in ("MESSAGE_RETENTION", "MAX_RECEIVE_COUNT"):
            try:
                conf.queue_setting(name, key)
            except ImproperlyConfigured as error:
                errors.append(checks.Error(str(error), id="integrations.E004"))
        try:
            visibility = conf.queue_setting(name, "VISIBILITY_TIMEOUT")
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id="integrations.E004"))
            continue
        if visibility < handler.timeout:
            errors.append(
                checks.Error(
                    f"VISIBILITY_TIMEOUT of integration {name!r} ({visibility} s) is "
                    f"shorter than its handler timeout ({handler.timeout:g} s).",
                    hint="Raise VISIBILITY_TIMEOUT above the handler's TIMEOUT so a "
                    "slow call does not make the message visible to another consumer.",
                    id="integrations.E005",
                )
            )
        handler.close()
    return errors


@checks.register("integrations", deploy=True)
def check_dead_letter_queues(app_configs, **kwargs):
    """Check on AWS that every queue exists and redrives to its dead-letter queue.

    A deployment check (``manage.py check --deploy``), because it calls AWS.
    """
    try:
        names = registry.enabled_names()
    except ImproperlyConfigured:
        return []  # check_integrations reports it
    errors = []
    for name in names:
        try:
            errors.extend(_check_queue_pair(name))
        except (BotoCoreError, ClientError) as error:
            errors.append(
                checks.Warning(
                    f"queues of integration {name!r} could not be checked: {error}",
                    hint="Check AWS credentials, region and OUTBOX['AWS_ENDPOINT_URL'].",
                    id="integrations.W001",
                )
            )
    return errors


def _check_queue_pair(name: str) -> list:
    sqs = aws.client("sqs")
    urls = {}
    for dead_letter in (False, True):
        queue_name = fanout.queue_name(name, dead_letter=dead_letter)
        try:
            urls[dead_letter] = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            kind = "dead-letter queue" if dead_letter else "queue"
            return [
                checks.Error(
                    f"{kind} {queue_name!r} of integration {name!r} does not exist.",
                    hint="Run `python manage.py setup_fanout`.",
                    id="integrations.E006",
                )
            ]
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=urls[True], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=urls[False], AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    policy = json.loads(attributes.get("RedrivePolicy") or "{}")
    if policy.get("deadLetterTargetArn") != dlq_arn:
        return [
            checks.Error(
                f"queue {fanout.queue_name(name)!r} of integration {name!r} does not "
                f"redrive to its dead-letter queue {dlq_arn!r} (redrive policy: "
                f"{policy or 'none'}).",
                hint="Run `python manage.py setup_fanout` to set the redrive policy.",
                id="integrations.E007",
            )
        ]
    return []
