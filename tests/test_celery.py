"""Celery tasks against a real worker process and Redis on 127.0.0.1:6379.

Every test uses Redis database 11 and a queue name of its own, so parallel
runs and other users of the Redis server never share messages.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.db import transaction
from django.utils import timezone

from outbox.api import record_event
from outbox.models import OutboxEvent
from tests.processes import ROOT, process_environment, stop

from project.celery import app as celery_app

REDIS_DB = 11
BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
WAIT_SECONDS = 60  # upper bound for the worker to start and run a task


def redis_client() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)


def drop_connection_pools() -> None:
    """Make the app look up its connection pool again, for its current
    ``broker_url``. Pools stay open in kombu's registry, keyed by URL."""
    # Celery has no public call for this. It runs the same reset in a forked
    # child so that the child opens its own connections.
    celery_app._after_fork()


@pytest.fixture
def celery_queue():
    """Send this test's tasks to a queue of its own on Redis database 11."""
    try:
        redis_client().ping()
    except redis.ConnectionError as error:
        pytest.fail(f"Redis is not running on 127.0.0.1:6379 ({error}); start it")
    queue = f"outbox-test-{uuid.uuid4().hex[:8]}"
    saved = (celery_app.conf.broker_url, celery_app.conf.task_default_queue)
    celery_app.conf.broker_url = BROKER_URL
    celery_app.conf.task_default_queue = queue
    drop_connection_pools()
    yield queue
    celery_app.conf.broker_url, celery_app.conf.task_default_queue = saved
    drop_connection_pools()
    client = redis_client()
    client.delete(queue)
    for key in client.scan_iter("_kombu.binding.*"):
        for member in client.smembers(key):
            if queue.encode() in member:
                client.srem(key, member)


@pytest.fixture
def worker(celery_queue, aws_settings, tmp_path):
    """Start ``celery worker`` on the test's queue; stop it by process id."""
    env = process_environment({"CELERY_BROKER_URL": BROKER_URL})
    with open(tmp_path / "worker.log", "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "project", "worker",
                "--pool", "solo", "--queues", celery_queue,
                "--hostname", f"{celery_queue}@127.0.0.1",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "INFO",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        yield process
        stop(process)


def wait_for_status(event_id, status: str, log_path) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    current = ""
    while time.monotonic() < deadline:
        current = OutboxEvent.objects.get(pk=event_id).status
        if current == status:
            return current
        time.sleep(0.2)
    print(log_path.read_text())
    return current


def wait_for_deletion(event_id, log_path) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if not OutboxEvent.objects.filter(pk=event_id).exists():
            return True
        time.sleep(0.2)
    print(log_path.read_text())
    return False


@pytest.mark.django_db(transaction=True)
def test_on_commit_wakeup_queues_relay_task(settings, celery_queue):
    settings.OUTBOX = {**settings.OUTBOX, "CELERY_RELAY_ON_COMMIT": True}
    with transaction.atomic():
        record_event("order.placed", {"sku": "TEA-250"}, subject="1")
        queued_before_commit = redis_client().llen(celery_queue)

    assert queued_before_commit == 0
    assert redis_client().llen(celery_queue) == 1


@pytest.mark.django_db(transaction=True)
def test_on_commit_wakeup_skips_rollback(settings, celery_queue):
    settings.OUTBOX = {**settings.OUTBOX, "CELERY_RELAY_ON_COMMIT": True}
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            record_event("order.placed", {"sku": "TEA-250"}, subject="1")
            raise RuntimeError("roll back")

    assert redis_client().llen(celery_queue) == 0


@pytest.mark.django_db(transaction=True)
def test_on_commit_wakeup_off_by_default(celery_queue):
    with transaction.atomic():
        record_event("order.placed", {"sku": "TEA-250"}, subject="1")

    assert redis_client().llen(celery_queue) == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_relays_event_after_commit(settings, fanout, worker, tmp_path):
    settings.OUTBOX = {**settings.OUTBOX, "CELERY_RELAY_ON_COMMIT": True}
    with transaction.atomic():
        event = record_event("order.placed", {"sku": "TEA-250"}, subject="1")

    status = wait_for_status(event.pk, "published", tmp_path / "worker.log")

    assert status == "published"
    assert OutboxEvent.objects.get(pk=event.pk).sns_message_id


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_runs_scheduled_relay_pass(fanout, worker, celery_queue, tmp_path):
    from outbox.tasks import relay_pending

    events = [
        record_event("order.placed", {"sku": f"SKU-{n}"}, subject=str(n))
        for n in range(3)
    ]
    relay_pending.apply_async(kwargs={"batch_size": 2})

    statuses = [
        wait_for_status(event.pk, "published", tmp_path / "worker.log")
        for event in events
    ]
    assert statuses == ["published"] * 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_purges_old_published_events(worker, celery_queue, tmp_path):
    from outbox.tasks import purge_published

    old = record_event("order.placed", {"sku": "OLD"}, subject="1")
    recent = record_event("order.placed", {"sku": "NEW"}, subject="2")
    long_ago = timezone.now() - timedelta(days=30)
    OutboxEvent.objects.filter(pk=old.pk).update(
        status=OutboxEvent.Status.PUBLISHED, created_at=long_ago, published_at=long_ago
    )
    OutboxEvent.objects.filter(pk=recent.pk).update(
        status=OutboxEvent.Status.PUBLISHED, published_at=timezone.now()
    )
    purge_published.apply_async(kwargs={"older_than_days": 7})

    assert wait_for_deletion(old.pk, tmp_path / "worker.log")
    assert OutboxEvent.objects.filter(pk=recent.pk).exists()
