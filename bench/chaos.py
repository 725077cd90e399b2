"""Chaos run: signups flow through relays and consumers that keep being killed.

Three ``relay_outbox`` and three ``consume_integration`` processes (one per
integration) work on PostgreSQL and a local AWS (LocalStack when
bench/localstack.py installed it, else moto's server) while this script:

- signs users up from two threads, so commits interleave;
- SIGKILLs a random relay or consumer every few seconds and restarts it;
- makes SNS unreachable to the relays for a while, through a TCP proxy that
  stops listening;
- lets a fake Heap, Mailchimp and Slack fail 5% of calls transiently and
  reject a few users for good (bench/fake_third_party.py).

When the kills stop and the pipeline settles, a ledger compares every
committed signup with what each fake third party did and with the
dead-letter queues. The script prints it and exits with status 1 when any
event was lost, had a duplicate side effect, or got stuck.

    .venv/bin/python bench/chaos.py                      # 2,000 signups
    .venv/bin/python bench/chaos.py --signups 100000 --aws localstack

The database (``--database-url``, default the ``chaos`` database on
127.0.0.1) is created and migrated when missing, and its outbox, delivery and
user tables are emptied first: never point it at data you want to keep.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fake_third_party import FakeThirdParty  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chaos"
INTEGRATIONS = ("heap", "mailchimp", "slack")
SIGNED_UP = "user.signed_up"


@dataclass
class ChaosOptions:
    signups: int = 2000
    rate: float = 50.0  # signups per second
    kill_interval: float = 3.0  # mean seconds between two SIGKILLs
    outage_seconds: float = 10.0
    transient_rate: float = 0.05
    reject_every: int = 250  # one user in this many is rejected for good
    settle_timeout: float = 600.0  # seconds to wait for the pipeline to drain
    seed: int = 1
    log_dir: Path | None = None


@dataclass
class Ledger:
    """Outcome of every (signup, integration) pair, and the violations."""

    signups: int = 0
    rows: dict[str, Counter] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    chaos: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def format(self) -> str:
        lines = [
            f"chaos ledger: {self.signups} signups, "
            f"{self.signups * len(INTEGRATIONS)} deliveries expected",
            f"{'':38}"
            + "".join(f"{name:>11}" for name in INTEGRATIONS)
            + f"{'total':>11}",
        ]
        for label, counts in self.rows.items():
            total = sum(counts.values())
            cells = "".join(f"{counts.get(name, 0):>11}" for name in INTEGRATIONS)
            lines.append(f"{label:38}{cells}{total:>11}")
        lines.append(
            "chaos: " + ", ".join(f"{key} {value}" for key, value in self.chaos.items())
        )
        if self.violations:
            lines.append(f"VIOLATIONS ({len(self.violations)}):")
            lines.extend(f"  {violation}" for violation in self.violations[:50])
        else:
            lines.append("no violations: nothing lost, duplicated or stuck")
        return "\n".join(lines)


# Processes -------------------------------------------------------------------


class ManagedProcess:
    """A manage.py command that can be SIGKILLed and started again."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.kills = 0

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.kills += 1

    def restart_if_exited(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.start()

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


class ToggleProxy:
    """A TCP proxy on 127.0.0.1 that can stop listening to simulate an outage.

    While down, connecting is refused and open connections are closed, as
    when the network path to SNS is cut.
    """

    def __init__(self, target_url: str):
        host_port = target_url.split("://", 1)[1].rstrip("/")
        host, port = host_port.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = 0
        self.listener: socket.socket | None = None
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket()
        # Accepted connections keep the port busy after down(); SO_REUSEPORT
        # lets the new listener bind it again.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self.lock:
            self.listener.close()
            for connection in self.connections:
                _close_quietly(connection)
            self.connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                _close_quietly(client)
                continue
            upstream.settimeout(None)
            with self.lock:
                self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        _close_quietly(source)
        _close_quietly(sink)


def _close_quietly(connection: socket.socket) -> None:
    try:
        connection.close()
    except OSError:
        pass


# The run -----------------------------------------------------------------------


def run(options: ChaosOptions, aws_endpoint: str, database_url: str) -> Ledger:
    """Run the chaos against an AWS endpoint and the configured database."""
    from django.test import override_settings

    from integrations import fanout
    from outbox import aws

    suffix = uuid.uuid4().hex[:8]
    log_dir = options.log_dir or Path(tempfile.mkdtemp(prefix="chaos-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    fake = FakeThirdParty(options.transient_rate, options.reject_every, options.seed)
    fake.start()
    proxy = ToggleProxy(aws_endpoint)
    outbox_settings, integration_settings = _settings(aws_endpoint, suffix, fake)
    with override_settings(OUTBOX=outbox_settings, INTEGRATIONS=integration_settings):
        aws.reset_clients()
        fanout.forget_queue_urls()
        plan = fanout.apply(fanout.build_plan())
        processes = _processes(
            plan, proxy, aws_endpoint, database_url, suffix, fake, log_dir
        )
        try:
            chaos = _run_chaos(options, processes, proxy)
            settled = _wait_until_settled(plan, options.settle_timeout)
            chaos["settled"] = settled
        finally:
            for process in processes:
                process.stop()
            proxy.down()
            fake.stop()
        ledger = build_ledger(plan, fake, options)
        ledger.chaos.update(chaos)
        ledger.chaos["third-party transient failures"] = fake.record.transient_responses
        ledger.chaos["third-party rejections"] = fake.record.permanent_responses
        ledger.chaos["logs"] = str(log_dir)
        aws.reset_clients()
        fanout.forget_queue_urls()
    return ledger


def _settings(aws_endpoint, suffix, fake):
    from django.conf import settings

    outbox_settings = {
        **settings.OUTBOX,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_REGION": "us-east-1",
        "TOPIC_NAME": f"chaos-{suffix}",
        "TOPIC_ARN": None,
    }
    handlers = {
        "heap": {
            "CLASS": "integrations.handlers.heap.HeapHandler",
            "OPTIONS": {"APP_ID": "chaos", "BASE_URL": fake.base_url},
        },
        "mailchimp": {
            "CLASS": "integrations.handlers.mailchimp.MailchimpHandler",
            "OPTIONS": {
                "API_KEY": "chaos-us1",
                "LIST_ID": "chaos-list",
                "BASE_URL": f"{fake.base_url}/mailchimp",
            },
        },
        "slack": {
            "CLASS": "integrations.handlers.slack.SlackHandler",
            "OPTIONS": {"WEBHOOK_URL": f"{fake.base_url}/slack/hook"},
        },
    }
    integration_settings = {
        **settings.INTEGRATIONS,
        "HANDLERS": handlers,
        "QUEUE_PREFIX": f"chaos{suffix}-",
        # A killed consumer's messages come back after this many seconds.
        "VISIBILITY_TIMEOUT": 10,
        "MAX_RECEIVE_COUNT": 8,
    }
    return outbox_settings, integration_settings


def _processes(plan, proxy, aws_endpoint, database_url, suffix, fake, log_dir):
    base = {
        **os.environ,
        **fake.environment(),
        "DJANGO_SETTINGS_MODULE": "bench.guarantees_settings",
        "DATABASE_URL": database_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        "OUTBOX_TOPIC_ARN": plan.topic_arn,
        "INTEGRATIONS_QUEUE_PREFIX": f"chaos{suffix}-",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
    }
    relay_env = {
        **base,
        # Relays reach SNS only through the proxy, which the outage cuts.
        "OUTBOX_AWS_ENDPOINT_URL": proxy.url,
        "OUTBOX_OVERRIDES": json.dumps(
            {
                "LEASE_SECONDS": 20,
                "POLL_INTERVAL": 0.5,
                "OUTAGE_BACKOFF_MAX": 2,
                "BACKOFF_BASE": 0.5,
                "BACKOFF_MAX": 2,
            }
        ),
    }
    consumer_env = {
        **base,
        "OUTBOX_AWS_ENDPOINT_URL": aws_endpoint,
        "INTEGRATIONS_OVERRIDES": json.dumps(
            {"WAIT_TIME_SECONDS": 2, "RETRY_BACKOFF_BASE": 1, "RETRY_BACKOFF_MAX": 2}
        ),
    }
    processes = [
        ManagedProcess(
            f"relay-{n}",
            ["relay_outbox", "--batch-size", "50", "--relay-id", f"relay-{n}"],
            relay_env,
            log_dir,
        )
        for n in range(3)
    ]
    processes += [
        ManagedProcess(
            f"consumer-{name}", ["consume_integration", name], consumer_env, log_dir
        )
        for name in INTEGRATIONS
    ]
    for process in processes:
        process.start()
    return processes


def _run_chaos(options, processes, proxy) -> dict[str, object]:
    """Sign users up while killing processes and cutting SNS; return counts."""
    stop = threading.Event()
    producers = [
        threading.Thread(target=_sign_up, args=(options, part, stop), daemon=True)
        for part in range(2)
    ]
    started = time.monotonic()
    for producer in producers:
        producer.start()
    try:
        outages = _kill_and_cut(options, processes, proxy, producers, started)
    finally:
        stop.set()
        for producer in producers:
            producer.join()
    return {
        "SIGKILLs": {p.name: p.kills for p in processes if p.kills},
        "SNS outages": f"{outages} of {options.outage_seconds:.0f} s",
        "chaos seconds": round(time.monotonic() - started),
    }


def _kill_and_cut(options, processes, proxy, producers, started) -> int:
    """SIGKILL a random process now and then, and cut SNS off once, until the
    signups are done; return the number of outages."""
    chaos_random = random.Random(options.seed)
    production_seconds = options.signups / options.rate
    outage_at = started + production_seconds * 0.3
    outage_until = None
    outages = 0
    next_kill = started + chaos_random.expovariate(1 / options.kill_interval)
    try:
        while any(producer.is_alive() for producer in producers) or (
            time.monotonic() < started + production_seconds + 5
        ):
            time.sleep(0.2)
            now = time.monotonic()
            if outage_until is None and now >= outage_at and options.outage_seconds > 0:
                proxy.down()
                outage_until = now + options.outage_seconds
                outages += 1
            if outage_until and now >= outage_until:
                proxy.up()
                outage_until = 0
            if now >= next_kill:
                chaos_random.choice(processes).kill()
                next_kill = now + chaos_random.expovariate(1 / options.kill_interval)
            for process in processes:
                process.restart_if_exited()
    finally:
        if outage_until:
            proxy.up()
    return outages


def _sign_up(options: ChaosOptions, part: int, stop: threading.Event) -> None:
    """Create every second user, committing each signup in its own transaction."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    user_model = get_user_model()
    interval = 2 / options.rate
    next_at = time.monotonic()
    try:
        for number in range(part, options.signups, 2):
            if stop.is_set():
                return
            marker = "+reject" if number % options.reject_every == 7 else ""
            email = f"chaos-{number}{marker}@example.com"
            with transaction.atomic():
                user_model.objects.create_user(
                    username=email, email=email, first_name=signup_name(number)
                )
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        connection.close()


def signup_name(number: int) -> str:
    """Return a name with scripts, emoji and markup, as people type them."""
    samples = (
        "Zoë",
        "中文",
        "العربية",
        "👩‍👩‍👧‍👦",
        "<b>&amp;</b>",
        "O'Brien",
        "line\u2028sep",
    )
    return f"{samples[number % len(samples)]} {number}"


def _wait_until_settled(plan, timeout: float) -> bool:
    """Wait until no event is pending and every queue is empty, counting
    in-flight messages; return False when ``timeout`` ran out first."""
    from outbox.models import OutboxEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = OutboxEvent.objects.filter(status="pending").exists()
        if not pending and _queued(plan) == 0:
            return True
        time.sleep(2)
    return False


def _queued(plan) -> int:
    from outbox import aws

    total = 0
    for queue in plan.queues:
        attributes = aws.client("sqs").get_queue_attributes(
            QueueUrl=queue.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        total += sum(int(value) for value in attributes.values())
    return total


# The ledger --------------------------------------------------------------------


def read_dead_letters(plan) -> dict[str, dict[str, str]]:
    """Return, per integration, event id -> reason of each dead-lettered message."""
    from outbox import aws

    sqs = aws.client("sqs")
    found: dict[str, dict[str, str]] = {}
    for queue in plan.queues:
        letters = found.setdefault(queue.integration, {})
        while True:
            response = sqs.receive_message(
                QueueUrl=queue.dlq_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                VisibilityTimeout=300,
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                event_id = _event_id(message["Body"])
                reason = message.get("MessageAttributes", {}).get("dead_letter_reason")
                letters[event_id] = reason["StringValue"] if reason else ""
    return found


def _event_id(body: str) -> str:
    try:
        return str(json.loads(body).get("id", ""))
    except (ValueError, AttributeError):
        return ""


def build_ledger(plan, fake: FakeThirdParty, options: ChaosOptions) -> Ledger:
    from django.contrib.auth import get_user_model

    from integrations.handlers.mailchimp import subscriber_hash
    from integrations.models import Delivery
    from outbox.models import OutboxEvent

    users = {str(user.pk): user for user in get_user_model().objects.all()}
    events = list(OutboxEvent.objects.filter(type=SIGNED_UP))
    letters = read_dead_letters(plan)
    deliveries = {(str(d.event_id), d.integration): d for d in Delivery.objects.all()}
    record = fake.record
    ledger = Ledger(signups=len(users))
    labels = (
        "delivered, acted on once",
        "dead-lettered with reason",
        "  of which rejected by design",
        "  of which also delivered",
        "lost",
        "duplicate side effects",
        "repeated calls absorbed by the API",
        "content changed",
        "stuck",
    )
    ledger.rows = {label: Counter() for label in labels}

    if len(events) != len(users):
        ledger.violations.append(
            f"{len(users)} users but {len(events)} signup events were committed"
        )
    for event in events:
        user = users.get(str(event.subject))
        email = user.email if user else ""
        keys = {
            "heap": str(event.id),
            "mailchimp": subscriber_hash(email),
            "slack": str(event.subject),
        }
        calls = {
            "heap": record.heap_calls[keys["heap"]],
            "mailchimp": record.mailchimp_calls[keys["mailchimp"]],
            "slack": record.slack_posts[keys["slack"]],
        }
        for name in INTEGRATIONS:
            _classify(
                ledger,
                event,
                name,
                calls[name],
                letters[name].get(str(event.id)),
                deliveries.get((str(event.id), name)),
                fake,
                keys[name],
            )
        _check_content(ledger, event, user, record, keys)
    _check_outbox(ledger)
    return ledger


def _classify(ledger, event, name, calls, reason, delivery, fake, key):
    rows = ledger.rows
    event_id = str(event.id)
    rejected = fake.rejects(name, _request_body(name, event))
    if calls >= 1:
        rows["delivered, acted on once"][name] += 1
        if calls > 1:
            if name == "slack":
                rows["duplicate side effects"][name] += calls - 1
                ledger.violations.append(f"{name}: {calls} posts for event {event_id}")
            else:
                rows["repeated calls absorbed by the API"][name] += calls - 1
        if reason is not None:
            rows["  of which also delivered"][name] += 1
    if reason is not None:
        rows["dead-lettered with reason"][name] += 1
        if rejected:
            rows["  of which rejected by design"][name] += 1
        if not reason and not (delivery and delivery.last_error):
            ledger.violations.append(
                f"{name}: event {event_id} dead-lettered without reason"
            )
    if calls == 0 and reason is None:
        rows["lost"][name] += 1
        state = delivery.status if delivery else "no delivery row"
        ledger.violations.append(f"{name}: event {event_id} lost ({state})")
    if rejected and calls:
        ledger.violations.append(f"{name}: rejected event {event_id} was acted on")
    if (
        calls == 0
        and reason is None
        and delivery
        and delivery.status in ("in_progress", "retrying")
    ):
        rows["stuck"][name] += 1
        ledger.violations.append(
            f"{name}: delivery of {event_id} stuck in {delivery.status}"
        )


def _request_body(name: str, event) -> dict:
    data = event.data or {}
    if name == "heap":
        return {"identity": data.get("user_id", event.subject)}
    if name == "mailchimp":
        return {"email_address": data.get("email", "")}
    return {}


def _check_content(ledger, event, user, record, keys):
    if user is None:
        return
    member = record.mailchimp_members.get(keys["mailchimp"])
    if member and member.get("merge_fields", {}).get("FNAME") != user.first_name:
        ledger.rows["content changed"]["mailchimp"] += 1
        ledger.violations.append(f"mailchimp: name of event {event.id} changed")
    properties = record.heap_properties.get(keys["heap"])
    if properties and str(properties.get("user_id")) != str(user.pk):
        ledger.rows["content changed"]["heap"] += 1
        ledger.violations.append(f"heap: properties of event {event.id} changed")


def _check_outbox(ledger):
    from outbox.models import OutboxEvent

    counts = Counter(OutboxEvent.objects.values_list("status", flat=True))
    ledger.chaos["outbox"] = dict(counts)
    for status in ("pending", "failed"):
        if counts.get(status):
            ledger.violations.append(f"outbox: {counts[status]} events {status}")


# Command line --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = ChaosOptions()
    parser.add_argument(
        "--signups",
        type=int,
        default=defaults.signups,
        help="users to sign up (default: %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=defaults.rate,
        help="signups per second (default: %(default)s)",
    )
    parser.add_argument(
        "--kill-interval",
        type=float,
        default=defaults.kill_interval,
        help="mean seconds between SIGKILLs (default: %(default)s)",
    )
    parser.add_argument(
        "--outage-seconds",
        type=float,
        default=defaults.outage_seconds,
        help="seconds SNS is unreachable for the relays; 0 for none "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--transient-rate",
        type=float,
        default=defaults.transient_rate,
        help="share of third-party calls that fail transiently "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--reject-every",
        type=int,
        default=defaults.reject_every,
        help="one user in this many is rejected for good by Heap and "
        "one by Mailchimp (default: %(default)s)",
    )
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=defaults.settle_timeout,
        help="seconds to wait for the pipeline to drain after the "
        "chaos (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the kills and failures (default: %(default)s)",
    )
    parser.add_argument(
        "--aws",
        choices=("auto", "moto", "localstack"),
        default="auto",
        help="local AWS to start; auto picks LocalStack when "
        "bench/localstack.py installed it, else moto, which slows "
        "down as queues fill (default: %(default)s)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CHAOS_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database to use; its tables are emptied "
        "(default: CHAOS_DATABASE_URL or %(default)s)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="folder for the processes' logs (default: a new " "temporary folder)",
    )
    return parser


def setup_django(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.guarantees_settings"
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    from bench.common import setup_django as setup_benchmark_django
    from bench.common import truncate

    setup_benchmark_django(database_url)
    truncate(
        "integrations_deliveryattempt",
        "integrations_delivery",
        "outbox_relayattempt",
        "outbox_outboxevent",
        "auth_user",
    )


class MotoServerProcess:
    """moto's server as a child process on a free loopback port."""

    def __init__(self, log_dir: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        with open(log_dir / "moto.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto server did not listen on port {self.port} in 30 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.database_url and not args.database_url.startswith("postgres"):
        raise SystemExit(f"--database-url {args.database_url!r} is not PostgreSQL")
    setup_django(args.database_url)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="chaos-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    options = ChaosOptions(
        signups=args.signups,
        rate=args.rate,
        kill_interval=args.kill_interval,
        outage_seconds=args.outage_seconds,
        transient_rate=args.transient_rate,
        reject_every=args.reject_every,
        settle_timeout=args.settle_timeout,
        seed=args.seed,
        log_dir=log_dir,
    )
    from bench import localstack

    if args.aws == "auto":
        args.aws = "localstack" if localstack.is_installed() else "moto"
    if args.aws == "localstack":
        server = localstack.LocalStackServer().start()
    else:
        server = MotoServerProcess(log_dir)
    started = time.monotonic()
    try:
        ledger = run(options, server.endpoint_url, args.database_url)
    finally:
        server.stop()
    ledger.chaos["AWS"] = args.aws
    ledger.chaos["wall seconds"] = round(time.monotonic() - started)
    print(ledger.format())
    return 0 if ledger.ok else 1


if __name__ == "__main__":
    sys.exit(main())
