"""A local stand-in for Heap, Mailchimp and Slack that records every request.

It listens on 127.0.0.1 only. It fails a configurable share of calls with a
transient response (500, 503, 429 with ``Retry-After``, 408) before acting.
It rejects some users for good with 400: Heap the users whose id is a
multiple of ``heap_reject_every``, Mailchimp the addresses containing
``+reject@``. Each stand-in acts as its real API does on a repeated call:
Heap records nothing new for a repeated idempotency key, a Mailchimp ``PUT``
of the same member changes nothing, and every Slack post shows up in the
channel.
"""

from __future__ import annotations

import json
import random
import re
import sys
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAILCHIMP_MEMBER = re.compile(r"^/mailchimp/3\.0/lists/[^/]+/members/([0-9a-f]{32})$")
SLACK_USER = re.compile(r"\(user (\S+)\)$")
TRANSIENT_RESPONSES = (
    (500, {}),
    (503, {}),
    (429, {"Retry-After": "1"}),
    (408, {}),
)


@dataclass
class Record:
    """Requests the stand-ins received and the effects they applied."""

    # Every request: (party, key, HTTP status of the response).
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    # Heap: idempotency key -> accepted calls; the first one recorded the event.
    heap_calls: Counter = field(default_factory=Counter)
    heap_properties: dict[str, dict] = field(default_factory=dict)
    # Mailchimp: subscriber hash -> accepted PUTs, and the member as last put.
    mailchimp_calls: Counter = field(default_factory=Counter)
    mailchimp_members: dict[str, dict] = field(default_factory=dict)
    # Slack: user id -> posts in the channel.
    slack_posts: Counter = field(default_factory=Counter)
    transient_responses: int = 0
    permanent_responses: int = 0


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A SIGKILLed consumer drops its connection in the middle of a request.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class FakeThirdParty:
    """Threaded HTTP server on 127.0.0.1 with the three stand-ins."""

    def __init__(self, transient_rate: float, heap_reject_every: int, seed: int):
        self.transient_rate = transient_rate
        self.heap_reject_every = heap_reject_every
        self.random = random.Random(seed)
        self.record = Record()
        self.lock = threading.Lock()
        self.server = QuietHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeThirdParty:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def environment(self) -> dict[str, str]:
        """Variables that point project.settings' handlers at this server."""
        return {
            "HEAP_APP_ID": "chaos",
            "HEAP_BASE_URL": self.base_url,
            "MAILCHIMP_API_KEY": "chaos-us1",
            "MAILCHIMP_LIST_ID": "chaos-list",
            "MAILCHIMP_BASE_URL": f"{self.base_url}/mailchimp",
            "SLACK_WEBHOOK_URL": f"{self.base_url}/slack/hook",
        }

    # Responses ---------------------------------------------------------------

    def respond(self, method: str, path: str, body: dict) -> tuple[int, dict, str]:
        """Choose the response to one request and apply its effect."""
        party, key = self._identify(method, path, body)
        with self.lock:
            status, headers = self._choose_status(party, body)
            self.record.requests.append((party, key, status))
            if status == 200:
                self._apply(party, key, body)
        return status, headers, json.dumps({"status": status})

    def _identify(self, method: str, path: str, body: dict) -> tuple[str, str]:
        if method == "POST" and path == "/api/track":
            return "heap", str(body.get("idempotency_key", ""))
        member = MAILCHIMP_MEMBER.match(path)
        if method == "PUT" and member:
            return "mailchimp", member.group(1)
        if method == "POST" and path == "/slack/hook":
            user = SLACK_USER.search(str(body.get("text", "")))
            return "slack", user.group(1) if user else ""
        return "unknown", f"{method} {path}"

    def _choose_status(self, party: str, body: dict) -> tuple[int, dict]:
        if party == "unknown":
            return 404, {}
        if self.rejects(party, body):
            self.record.permanent_responses += 1
            return 400, {}
        if self.random.random() < self.transient_rate:
            self.record.transient_responses += 1
            return self.random.choice(TRANSIENT_RESPONSES)
        return 200, {}

    def rejects(self, party: str, body: dict) -> bool:
        if party == "heap":
            identity = str(body.get("identity", ""))
            return identity.isdigit() and int(identity) % self.heap_reject_every == 0
        if party == "mailchimp":
            return "+reject@" in str(body.get("email_address", ""))
        return False

    def _apply(self, party: str, key: str, body: dict) -> None:
        if party == "heap":
            self.record.heap_calls[key] += 1
            self.record.heap_properties.setdefault(key, body.get("properties") or {})
        elif party == "mailchimp":
            self.record.mailchimp_calls[key] += 1
            self.record.mailchimp_members[key] = body
        elif party == "slack":
            self.record.slack_posts[key] += 1

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                status, headers, text = fake.respond(self.command, self.path, body)
                payload = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = _serve
            do_PUT = _serve

            def log_message(self, format, *args):
                pass

        return Handler
