"""Start ``manage.py`` commands as real processes and stop them by process id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """Return a DATABASE_URL for the test database this process is using."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    user = params.get("USER") or ""
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


def process_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child that uses this test's database, topic and queues."""
    outbox = settings.OUTBOX
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": database_url(),
        "OUTBOX_AWS_ENDPOINT_URL": outbox.get("AWS_ENDPOINT_URL") or "",
        "AWS_REGION": outbox.get("AWS_REGION") or "us-east-1",
        "OUTBOX_TOPIC_NAME": outbox.get("TOPIC_NAME") or "",
        "INTEGRATIONS_QUEUE_PREFIX": settings.INTEGRATIONS.get("QUEUE_PREFIX", "outbox-"),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra or {})
    return env


def start_manage(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def stop(process: subprocess.Popen, timeout: float = 20) -> int:
    """Send SIGTERM to this process id, then SIGKILL if it does not exit."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    return process.returncode


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
