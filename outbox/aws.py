"""boto3 clients configured from settings.

Credentials always come from boto3's standard chain (environment, shared
files, instance or task roles). Region and endpoint come from
``OUTBOX["AWS_REGION"]`` and ``OUTBOX["AWS_ENDPOINT_URL"]`` when set, so
moto, LocalStack and real AWS differ by settings alone.
"""

from __future__ import annotations

import threading

import boto3
from botocore.config import Config

from outbox import conf

_clients: dict[tuple, object] = {}
_lock = threading.Lock()

CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=30,
    # The relay and the consumers have their own backoff, so botocore's
    # retries stay short to surface an outage quickly.
    retries={"mode": "standard", "max_attempts": 2},
    max_pool_connections=20,
)


def client(service: str):
    """Return a cached boto3 client for ``service`` ("sns", "sqs", "s3")."""
    key = (service, conf.get("AWS_REGION"), conf.get("AWS_ENDPOINT_URL"))
    with _lock:
        if key not in _clients:
            _clients[key] = boto3.session.Session().client(
                service,
                region_name=key[1],
                endpoint_url=key[2],
                config=CLIENT_CONFIG,
            )
        return _clients[key]


def reset_clients() -> None:
    with _lock:
        _clients.clear()


_topic_arns: dict[tuple, str] = {}


def topic_arn() -> str:
    """Return the configured topic's ARN, creating the topic if needed.

    ``CreateTopic`` is idempotent for an existing name with the same
    attributes, so this looks the topic up without ListTopics paging.
    """
    configured = conf.get("TOPIC_ARN")
    if configured:
        return configured
    name = conf.get("TOPIC_NAME")
    key = (name, conf.get("AWS_REGION"), conf.get("AWS_ENDPOINT_URL"))
    if key not in _topic_arns:
        _topic_arns[key] = create_topic(name)
    return _topic_arns[key]


def create_topic(name: str) -> str:
    attributes = {}
    if name.endswith(".fifo"):
        attributes = {"FifoTopic": "true", "ContentBasedDeduplication": "false"}
    response = client("sns").create_topic(Name=name, Attributes=attributes)
    return response["TopicArn"]
