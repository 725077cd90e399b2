"""Shared parts of the benchmarks: Django set-up, timing, and the record.

Every benchmark runs against PostgreSQL, by default the database
``bench_perf`` on 127.0.0.1 (``BENCH_DATABASE_URL`` overrides it), which it
creates and migrates when missing. Its tables are emptied between runs, so
never point it at a database whose data you want to keep.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "docs" / "benchmarks.md"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_perf"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def setup_django(database_url: str | None = None) -> str:
    """Point Django at the benchmark database, create and migrate it."""
    url = database_url or os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    if not url.startswith("postgres"):
        raise SystemExit(
            f"BENCH_DATABASE_URL={url!r} is not PostgreSQL; the benchmarks measure "
            "PostgreSQL only, e.g. postgres://postgres@127.0.0.1:5432/bench_perf"
        )
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    _create_database(url)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url


def _create_database(url: str) -> None:
    import dj_database_url
    import psycopg

    params = dj_database_url.parse(url)
    admin = psycopg.connect(
        host=params["HOST"] or "127.0.0.1", port=params["PORT"] or 5432,
        user=params["USER"], password=params["PASSWORD"] or None,
        dbname="postgres", autocommit=True,
    )
    with admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [params["NAME"]]
        ).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{params["NAME"]}"')


def truncate(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def vacuum_analyze(table: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")


def seed_pending_events(count: int, created_offset_seconds: float = 0.0) -> None:
    """Insert ``count`` pending events of the signup shape in one statement."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO outbox_outboxevent (
                id, type, source, subject, data, created_at, trace_parent, status,
                attempts, next_attempt_at, last_error, sns_message_id, payload_key,
                claimed_by
            )
            SELECT gen_random_uuid(), 'user.signed_up', '/bench', n::text,
                   jsonb_build_object('user_id', n, 'email', 'user' || n || '@example.com',
                                      'name', 'User ' || n),
                   now() - make_interval(secs => %s) + n * interval '1 microsecond',
                   '', 'pending', 0, now() - interval '1 second', '', '', '', ''
            FROM generate_series(1, %s) AS n
            """,
            [created_offset_seconds, count],
        )


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values`` (fraction 0 to 1)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def machine() -> str:
    cores = os.cpu_count()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cores} cores, {memory_gib:.0f} GiB, {platform.python_implementation()} "
        f"{platform.python_version()}, PostgreSQL {_postgres_version()}"
    )


def _postgres_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0].split()[0]


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
            text=True, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (uncommitted changes)' if dirty else ''}"


def command_line() -> str:
    program = os.path.relpath(sys.argv[0], ROOT)
    return shlex.join([".venv/bin/python", program, *sys.argv[1:]])


def record(
    title: str, rows: list[tuple[str, str, str]], notes=(), save: bool = True
) -> None:
    """Print a result table and append it, with its context, to docs/benchmarks.md.

    Each row is (measurement, figure, baseline figure measured in the same run).
    """
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### {title}, {now}",
        "",
        f"- command: `{command_line()}`",
        f"- commit: {commit()}",
        f"- machine: {machine()}",
        "- load average (1, 5, 15 min) when recorded: "
        + ", ".join(f"{value:.1f}" for value in os.getloadavg())
        + " (other processes share the machine)",
        "",
        "| measurement | result | baseline in the same run |",
        "| --- | --- | --- |",
        *[f"| {name} | {figure} | {baseline} |" for name, figure, baseline in rows],
    ]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    text = "\n".join(lines) + "\n"
    print(text)
    if not save:
        return
    RECORD.parent.mkdir(exist_ok=True)
    if not RECORD.exists():
        RECORD.write_text("# Benchmarks\n")
    with RECORD.open("a") as record_file:
        record_file.write("\n" + text)


def parser(description: str) -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(description=description)
    result.add_argument(
        "--no-record", action="store_true",
        help="Print the figures without appending them to docs/benchmarks.md.",
    )
    return result
