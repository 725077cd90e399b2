"""The demo: real signups over HTTP, relayed through moto, delivered by consumers.

Everything runs in this process: a moto server on a free loopback port, the
project's WSGI application on another, the relay and one consumer per
integration. The database is whatever DATABASES names (SQLite by default).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time

import requests
from django.conf import settings
from django.core.management import call_command
from django.test.utils import override_settings
from django.urls import reverse
from werkzeug.serving import make_server

from integrations import registry, status
from integrations.consumer import Consumer
from outbox import aws
from outbox.models import OutboxEvent
from outbox.relay import Relay

logger = logging.getLogger(__name__)

SAMPLE_USERS = [
    ("ada@example.com", "Ada Lovelace"),
    ("zoe@example.org", "Zoë Ünal 🚀"),
    ("grace@example.net", "<b>Grace</b> & Hopper"),
]
SAMPLE_PASSWORD = "correct-horse-battery-staple-42"
CSRF_PATTERN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class LocalStack:
    """A moto server and the project's web server, both on 127.0.0.1."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        # moto accepts any credentials; boto3 only needs some to sign with.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.web = None
        self.web_thread = None
        self.overrides = None

    def start(self, web_port: int = 0):
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        outbox_settings = {
            **getattr(settings, "OUTBOX", {}),
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_REGION": "us-east-1",
            "TOPIC_ARN": None,
        }
        self.overrides = override_settings(OUTBOX=outbox_settings)
        self.overrides.enable()
        aws.reset_clients()

        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.core.wsgi import get_wsgi_application

        self.web = make_server(
            "127.0.0.1", web_port, StaticFilesHandler(get_wsgi_application()), threaded=True
        )
        self.web_thread = threading.Thread(target=self.web.serve_forever, daemon=True)
        self.web_thread.start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web.server_port}"

    def stop(self):
        if self.web:
            self.web.shutdown()
        self.moto.stop()
        if self.overrides:
            self.overrides.disable()
        aws.reset_clients()


def post_form(session: requests.Session, url: str, fields: dict) -> requests.Response:
    """GET a form for its CSRF token, then POST it as a browser would."""
    page = session.get(url, timeout=10)
    page.raise_for_status()
    match = CSRF_PATTERN.search(page.text)
    if not match:
        raise RuntimeError(f"no CSRF token in the form at {url}")
    return session.post(
        url, data={**fields, "csrfmiddlewaretoken": match.group(1)},
        headers={"Referer": url}, timeout=10,
    )


def sign_up_and_log_in(base_url: str, run_tag: str, write) -> None:
    """Sign the sample users up, tagging addresses so the demo can run again."""
    for address, name in SAMPLE_USERS:
        local, domain = address.split("@")
        email = f"{local}+{run_tag}@{domain}"
        response = post_form(
            requests.Session(), base_url + reverse("accounts:signup"),
            {"email": email, "name": name, "password1": SAMPLE_PASSWORD,
             "password2": SAMPLE_PASSWORD},
        )
        if response.url.rstrip("/").endswith("signup"):
            raise RuntimeError(f"signup of {email} failed: the form came back with errors")
        write(f"signed up {email} over HTTP")
    local, domain = SAMPLE_USERS[0][0].split("@")
    email = f"{local}+{run_tag}@{domain}"
    response = post_form(
        requests.Session(), base_url + reverse("accounts:login"),
        {"username": email, "password": SAMPLE_PASSWORD},
    )
    if not response.url.rstrip("/").endswith("welcome"):
        raise RuntimeError(f"login of {email} failed")
    write(f"logged in {email} over HTTP")


def drain(consumers: list[Consumer], timeout: float = 60) -> None:
    """Relay and consume until nothing is pending and the queues are empty."""
    relay = Relay()
    stop = threading.Event()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            relay.run(stop, interval=0.1, once=True)
            received = sum(consumer.poll(wait_seconds=0) for consumer in consumers)
            pending = OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).exists()
            if not received and not pending:
                return
    finally:
        relay.close()


def status_table(events) -> list[str]:
    statuses = status.delivery_statuses(events)
    names = registry.enabled_names()
    header = f"{'event':36}  {'type':16}  {'outbox':10}  " + "  ".join(
        f"{name:15}" for name in names
    )
    lines = [header, "-" * len(header)]
    for event in events:
        cells = "  ".join(f"{statuses[str(event.id)][name]:15}" for name in names)
        lines.append(f"{str(event.id):36}  {event.type:16}  {event.status:10}  {cells}")
    return lines


def all_delivered(events) -> bool:
    ok_states = {"delivered", status.NOT_SUBSCRIBED}
    statuses = status.delivery_statuses(events)
    return all(
        event.status == OutboxEvent.Status.PUBLISHED
        and set(statuses[str(event.id)].values()) <= ok_states
        for event in events
    )


def prepare(write) -> None:
    call_command("migrate", verbosity=0)
    call_command("setup_fanout", stdout=_Writer(write))


class _Writer:
    def __init__(self, write):
        self.write_line = write

    def write(self, text):
        for line in text.rstrip("\n").splitlines():
            self.write_line(line)

    def flush(self):
        pass
