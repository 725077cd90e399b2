"""Figures for the dashboard, ``outbox_stats`` and the metrics endpoint.

Every query here is served by an index on ``OutboxEvent`` or
``RelayAttempt``, so the figures stay cheap on millions of rows. Other apps
add their own figures with ``register_section``, so the outbox never imports
the queue code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from outbox.models import OutboxEvent, RelayAttempt

CHART_HOURS = 24
STATUSES = [status.value for status in OutboxEvent.Status]

SectionCollector = Callable[[], dict[str, dict[str, Any]]]
# name -> (function returning {row: {figure: number or None}}, row label name)
_sections: dict[str, tuple[SectionCollector, str]] = {}


def register_section(name: str, collect: SectionCollector, label: str = "name"):
    """Add a section of figures, e.g. one row per integration queue.

    ``label`` names the row in metrics, e.g. ``integration="heap"``.
    """
    _sections[name] = (collect, label)


def sections() -> dict[str, tuple[SectionCollector, str]]:
    return dict(_sections)


def age_seconds(moment: datetime | None, now: datetime) -> float | None:
    if moment is None:
        return None
    return max(0.0, (now - moment).total_seconds())


def format_age(seconds: float | None) -> str:
    """Return an age such as "45 s", "12 min" or "3 h 5 min"; "-" if unknown."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    hours, rest = divmod(seconds, 3600)
    if hours < 48:
        return f"{hours} h {rest // 60} min"
    return f"{hours // 24} d {hours % 24} h"


def outbox_figures(now: datetime | None = None) -> dict[str, Any]:
    """Return the outbox's backlog and its last hour's throughput."""
    now = now or timezone.now()
    hour_ago = now - timedelta(hours=1)
    pending = OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING)
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    failed_last_hour = (
        RelayAttempt.objects.filter(
            attempted_at__gte=hour_ago, event__status=OutboxEvent.Status.FAILED
        )
        .values("event_id")
        .distinct()
        .count()
    )
    return {
        "pending": pending.count(),
        "oldest_pending_age_seconds": age_seconds(oldest, now),
        "published_last_hour": OutboxEvent.objects.filter(
            published_at__gte=hour_ago
        ).count(),
        "failed_last_hour": failed_last_hour,
    }


def hourly_counts(now: datetime | None = None, hours: int = CHART_HOURS) -> list[dict]:
    """Return events created per hour, by current status, oldest hour first."""
    now = now or timezone.now()
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    first_hour = current_hour - timedelta(hours=hours - 1)
    rows = (
        OutboxEvent.objects.filter(created_at__gte=first_hour)
        .annotate(hour=TruncHour("created_at"))
        .values("hour", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    buckets = {
        first_hour + timedelta(hours=offset): dict.fromkeys(STATUSES, 0)
        for offset in range(hours)
    }
    for row in rows:
        bucket = buckets.get(row["hour"])
        if bucket is not None and row["status"] in bucket:
            bucket[row["status"]] += row["count"]
    return [{"hour": hour, "counts": counts} for hour, counts in buckets.items()]


def collect(now: datetime | None = None) -> dict[str, Any]:
    """Return the outbox figures and every registered section."""
    figures: dict[str, Any] = {"outbox": outbox_figures(now)}
    for name, (collect_section, _) in sections().items():
        figures[name] = collect_section()
    return figures
