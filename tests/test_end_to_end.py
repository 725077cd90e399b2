"""Relay and consumers as separate processes, against moto and local servers."""

import json
import os
import re
import subprocess
import sys
import time

import pytest
from django.urls import reverse

from integrations.models import Delivery
from outbox.models import OutboxEvent
from tests import processes

PASSWORD = "correct-horse-battery-staple-42"
UUID_LINE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-")


def wait_for(condition, timeout=60.0, interval=0.2):
    """Poll ``condition`` until it is true; fail with its last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_processes_deliver_signups_and_login(client, fanout, third_parties, tmp_path):
    env = processes.process_environment(third_parties.environment())
    started = [
        processes.start_manage(
            ["relay_outbox", "--interval", "0.2"], env, tmp_path / "relay.log"
        ),
        *[
            processes.start_manage(
                ["consume_integration", name], env, tmp_path / f"{name}.log"
            )
            for name in ("heap", "mailchimp", "slack")
        ],
    ]
    try:
        for email, name in [("ada@example.com", "Ada"), ("bob@example.com", "Bob")]:
            response = client.post(
                reverse("accounts:signup"),
                {"email": email, "name": name, "password1": PASSWORD, "password2": PASSWORD},
            )
            assert response.status_code == 302
        assert client.login(username="ada@example.com", password=PASSWORD)

        wait_for(lambda: Delivery.objects.filter(status="delivered").count() == 7)
    finally:
        codes = [processes.stop(process) for process in started]

    assert codes == [0, 0, 0, 0]
    assert OutboxEvent.objects.filter(status="published").count() == 3
    heap_events = sorted(json.loads(r.get_data())["event"] for r in third_parties.heap)
    assert heap_events == ["user.logged_in", "user.signed_up", "user.signed_up"]
    emails = sorted(json.loads(r.get_data())["email_address"] for r in third_parties.mailchimp)
    assert emails == ["ada@example.com", "bob@example.com"]
    texts = sorted(json.loads(r.get_data())["text"] for r in third_parties.slack)
    assert texts[0].startswith("New signup: Ada")
    assert texts[1].startswith("New signup: Bob")
    relay_log = (tmp_path / "relay.log").read_text()
    assert "relay started" in relay_log
    assert "relay stopped" in relay_log


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_rolled_back_signup_publishes_and_calls_nothing(fanout, third_parties, tmp_path):
    from django.contrib.auth import get_user_model
    from django.db import transaction

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            get_user_model().objects.create_user("ada@example.com", "ada@example.com", "x")
            raise RuntimeError("roll the signup back")
    env = processes.process_environment(third_parties.environment())
    relay = subprocess.run(
        [sys.executable, "manage.py", "relay_outbox", "--once"],
        cwd=processes.ROOT, env=env, capture_output=True, timeout=120,
    )
    for name in ("heap", "mailchimp", "slack"):
        consumer = subprocess.run(
            [sys.executable, "manage.py", "consume_integration", name, "--once"],
            cwd=processes.ROOT, env=env, capture_output=True, timeout=120,
        )
        assert consumer.returncode == 0, consumer.stderr.decode()

    assert relay.returncode == 0, relay.stderr.decode()
    assert not OutboxEvent.objects.exists()
    assert third_parties.server.log == []


@pytest.mark.slow
def test_demo_command_delivers_everything(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }
    for name in ("OUTBOX_AWS_ENDPOINT_URL", "HEAP_APP_ID", "SLACK_WEBHOOK_URL"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "manage.py", "demo"],
        cwd=processes.ROOT, env=env, capture_output=True, text=True, timeout=180,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    table = [line for line in result.stdout.splitlines() if UUID_LINE.match(line)]
    signups = [line.split() for line in table if "user.signed_up" in line]
    logins = [line.split() for line in table if "user.logged_in" in line]
    assert len(signups) == 3
    assert len(logins) == 1
    for columns in signups:
        assert columns[2:] == ["published", "delivered", "delivered", "delivered"]
    assert logins[0][2:] == ["published", "delivered", "not", "subscribed", "not", "subscribed"]
