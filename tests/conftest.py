"""Shared fixtures: a local AWS over HTTP, fake third parties, PostgreSQL.

Each test that touches AWS gets its own topic and queue names on one
session-wide server, so tests never see each other's messages. The server is
moto's by default; OUTBOX_TEST_AWS=localstack starts LocalStack instead
(``make test-localstack``), which delivers from SNS to SQS asynchronously,
so tests wait for deliveries with ``consume_until``.
"""

from __future__ import annotations

import os
import re
import time
import uuid

import pytest
from django.db import connection

from integrations import fanout as fanout_module
from outbox import aws

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
AWS_BACKENDS = ("moto", "localstack")
AWS_BACKEND = os.environ.get("OUTBOX_TEST_AWS") or "moto"
# Fixtures that reach the local AWS: tests using them get the `aws` marker.
AWS_FIXTURES = {"aws_endpoint", "aws_settings", "fanout"}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "postgres: needs PostgreSQL (DATABASE_URL); skipped on SQLite"
    )
    config.addinivalue_line("markers", "slow: starts several processes or many events")
    config.addinivalue_line(
        "markers", "aws: uses the local AWS (added to tests using aws_settings)"
    )
    config.addinivalue_line(
        "markers", "moto_only: checks moto's behaviour; skipped on LocalStack"
    )
    config.addinivalue_line(
        "markers", "localstack_only: needs LocalStack (OUTBOX_TEST_AWS=localstack)"
    )
    if AWS_BACKEND not in AWS_BACKENDS:
        raise pytest.UsageError(
            f"OUTBOX_TEST_AWS={AWS_BACKEND!r} is not a known backend; "
            f"use one of {', '.join(AWS_BACKENDS)}"
        )


def pytest_collection_modifyitems(config, items):
    skip_moto_only = pytest.mark.skip(reason="checks moto only; OUTBOX_TEST_AWS=moto")
    skip_localstack_only = pytest.mark.skip(
        reason="needs LocalStack: make test-localstack"
    )
    for item in items:
        if AWS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.aws)
        if AWS_BACKEND != "moto" and item.get_closest_marker("moto_only"):
            item.add_marker(skip_moto_only)
        if AWS_BACKEND != "localstack" and item.get_closest_marker("localstack_only"):
            item.add_marker(skip_localstack_only)


@pytest.fixture
def postgres(db):
    """Skip on SQLite, or fail when REQUIRE_POSTGRES=1 (as in CI)."""
    if connection.vendor != "postgresql":
        message = "needs PostgreSQL: set DATABASE_URL=postgres://..."
        if REQUIRE_POSTGRES:
            pytest.fail(f"REQUIRE_POSTGRES=1 but the database is {connection.vendor}; {message}")
        pytest.skip(message)


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def localstack_server():
    """Return the URL of LocalStack: OUTBOX_TEST_AWS_ENDPOINT, or one started here."""
    external = os.environ.get("OUTBOX_TEST_AWS_ENDPOINT")
    if external:
        yield external
        return
    from bench.localstack import LocalStackError, LocalStackServer

    try:
        server = LocalStackServer().start()
    except LocalStackError as error:
        pytest.fail(f"OUTBOX_TEST_AWS=localstack but {error}", pytrace=False)
    yield server.endpoint_url
    server.stop()


@pytest.fixture(scope="session")
def aws_endpoint(request):
    """Return the endpoint URL of the local AWS chosen by OUTBOX_TEST_AWS."""
    if AWS_BACKEND == "localstack":
        return request.getfixturevalue("localstack_server")
    return request.getfixturevalue("moto_server")


@pytest.fixture
def payload_storage(settings, tmp_path):
    """Store claim-check payloads in this test's temporary folder."""
    settings.STORAGES = {
        **settings.STORAGES,
        "outbox_payloads": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "payloads")},
        },
    }
    return tmp_path / "payloads"


@pytest.fixture
def aws_settings(settings, aws_endpoint, payload_storage):
    """Point the outbox at the local AWS with names unique to this test."""
    suffix = uuid.uuid4().hex[:8]
    settings.OUTBOX = {
        **settings.OUTBOX,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_REGION": "us-east-1",
        "TOPIC_NAME": f"events-{suffix}",
        "TOPIC_ARN": None,
    }
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "QUEUE_PREFIX": f"t{suffix}-"}
    aws.reset_clients()
    fanout_module.forget_queue_urls()
    yield settings
    aws.reset_clients()
    fanout_module.forget_queue_urls()


@pytest.fixture
def fanout(aws_settings):
    """Create the topic, queues and subscriptions; return the applied plan."""
    return fanout_module.apply(fanout_module.build_plan())


def consume_all() -> int:
    """Poll every enabled integration's queue until it is empty; return the count."""
    from integrations import registry
    from integrations.consumer import Consumer

    handled = 0
    for name in registry.enabled_names():
        consumer = Consumer(name)
        try:
            while received := consumer.poll(wait_seconds=0):
                handled += received
        finally:
            consumer.close()
    return handled


@pytest.fixture
def consume_until():
    """Return ``consume_until(condition, timeout=15)``, which runs the consumers
    until ``condition()`` is true and fails the test at the deadline.

    moto delivers from SNS to SQS inside the Publish call, LocalStack a moment
    later, so a single pass over the queues is not enough on LocalStack.
    """

    def run(condition, timeout: float = 15.0, interval: float = 0.1):
        deadline = time.monotonic() + timeout
        while True:
            consume_all()
            if condition():
                return
            if time.monotonic() >= deadline:
                pytest.fail(
                    f"consumers did not reach the expected state within {timeout}s"
                )
            time.sleep(interval)

    return run


MAILCHIMP_MEMBER_PATH = re.compile(r"^/mailchimp/3\.0/lists/list-1/members/[0-9a-f]{32}$")


class ThirdParties:
    """Local HTTP servers standing in for Heap, Mailchimp and Slack."""

    def __init__(self, httpserver):
        self.server = httpserver
        self.base_url = httpserver.url_for("").rstrip("/")
        self.respond_ok()

    def respond_ok(self):
        self.server.clear_all_handlers()
        self.server.expect_request("/api/track", method="POST").respond_with_json({})
        self.server.expect_request(MAILCHIMP_MEMBER_PATH, method="PUT").respond_with_json({})
        self.server.expect_request("/slack/hook", method="POST").respond_with_data("ok")

    def requests_to(self, path_prefix: str):
        return [request for request, _ in self.server.log if request.path.startswith(path_prefix)]

    @property
    def heap(self):
        return self.requests_to("/api/track")

    @property
    def mailchimp(self):
        return self.requests_to("/mailchimp/")

    @property
    def slack(self):
        return self.requests_to("/slack/")

    def handler_settings(self) -> dict:
        base = self.base_url
        return {
            "heap": {
                "CLASS": "integrations.handlers.heap.HeapHandler",
                "OPTIONS": {"APP_ID": "app-1", "BASE_URL": base, "TIMEOUT": 5},
            },
            "mailchimp": {
                "CLASS": "integrations.handlers.mailchimp.MailchimpHandler",
                "OPTIONS": {
                    "API_KEY": "key-us1", "LIST_ID": "list-1",
                    "BASE_URL": f"{base}/mailchimp", "TIMEOUT": 5,
                },
            },
            "slack": {
                "CLASS": "integrations.handlers.slack.SlackHandler",
                "OPTIONS": {"WEBHOOK_URL": f"{base}/slack/hook", "TIMEOUT": 5},
            },
        }

    def environment(self) -> dict[str, str]:
        """Environment variables that point a manage.py process at these servers."""
        return {
            "HEAP_APP_ID": "app-1",
            "HEAP_BASE_URL": self.base_url,
            "MAILCHIMP_API_KEY": "key-us1",
            "MAILCHIMP_LIST_ID": "list-1",
            "MAILCHIMP_BASE_URL": f"{self.base_url}/mailchimp",
            "SLACK_WEBHOOK_URL": f"{self.base_url}/slack/hook",
        }


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)


@pytest.fixture
def third_parties(settings, httpserver):
    """Configure the three handlers for HTTP against a local server."""
    parties = ThirdParties(httpserver)
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "HANDLERS": parties.handler_settings()}
    return parties


@pytest.fixture
def fast_passwords(settings):
    """Hash staff passwords with MD5, which is fast and enough for tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def operator(client, fast_passwords):
    """Return a client logged in as staff with the outbox change permissions."""
    from tests.admin_helpers import OPERATOR, PASSWORD, make_staff

    make_staff("operator", *OPERATOR)
    assert client.login(username="operator", password=PASSWORD)
    return client
