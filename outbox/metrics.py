"""A Prometheus endpoint for the figures of ``outbox.stats``.

It needs the optional prometheus-client package and returns 404 without it.
"""

from __future__ import annotations

import hmac

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET

from outbox import conf, stats

try:
    import prometheus_client
    from prometheus_client.core import GaugeMetricFamily
except ImportError:  # the package is optional
    prometheus_client = None

OUTBOX_GAUGES = {
    "pending": ("outbox_events_pending", "Events waiting for publication."),
    "oldest_pending_age_seconds": (
        "outbox_oldest_pending_age_seconds", "Age of the oldest pending event.",
    ),
    "published_last_hour": (
        "outbox_events_published_last_hour", "Events published in the last hour.",
    ),
    "failed_last_hour": (
        "outbox_events_failed_last_hour",
        "Events that became failed with an attempt in the last hour.",
    ),
}


class StatsCollector:
    """Read the figures at scrape time, so every scrape is current."""

    def collect(self):
        figures = stats.collect()
        outbox = figures.pop("outbox")
        for key, (name, documentation) in OUTBOX_GAUGES.items():
            if outbox.get(key) is not None:
                yield GaugeMetricFamily(name, documentation, value=outbox[key])
        labels = {name: label for name, (_, label) in stats.sections().items()}
        for section, rows in figures.items():
            yield from section_gauges(section, labels.get(section, "name"), rows)


def section_gauges(section: str, label: str, rows: dict):
    gauges: dict[str, GaugeMetricFamily] = {}
    for row_name, row in rows.items():
        for figure, value in row.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if figure not in gauges:
                gauges[figure] = GaugeMetricFamily(
                    f"outbox_{section}_{figure}", f"{figure} per {label}.",
                    labels=[label],
                )
            gauges[figure].add_metric([row_name], value)
    yield from gauges.values()


@require_GET
def metrics_view(request):
    if prometheus_client is None:
        raise Http404("metrics need the prometheus-client package")
    token = conf.get("METRICS_TOKEN")
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(supplied.encode(), str(token).encode()):
            return HttpResponse("invalid or missing bearer token\n", status=401)
    registry = prometheus_client.CollectorRegistry()
    registry.register(StatsCollector())
    return HttpResponse(
        prometheus_client.generate_latest(registry),
        content_type=prometheus_client.CONTENT_TYPE_LATEST,
    )
