"""An inline SVG bar chart of events per hour, stacked by status."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLOURS = {"published": "#417690", "pending": "#e0a800", "failed": "#ba2121"}
WIDTH = 720
HEIGHT = 200
MARGIN_LEFT = 40
MARGIN_BOTTOM = 24


def hourly_chart(hourly: list[dict]) -> SafeString:
    """Render ``stats.hourly_counts()`` as an SVG element."""
    peak = max((sum(bucket["counts"].values()) for bucket in hourly), default=0)
    scale = (HEIGHT - MARGIN_BOTTOM - 10) / peak if peak else 0
    slot = (WIDTH - MARGIN_LEFT) / max(len(hourly), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="outbox-chart" '
        f'aria-label="Events per hour by status, last {len(hourly)} hours">',
        f'<text x="0" y="12" font-size="11">{peak}</text>',
        f'<line x1="{MARGIN_LEFT}" y1="{HEIGHT - MARGIN_BOTTOM}" x2="{WIDTH}" '
        f'y2="{HEIGHT - MARGIN_BOTTOM}" stroke="#999"/>',
    ]
    for index, bucket in enumerate(hourly):
        x = MARGIN_LEFT + index * slot
        parts.extend(_bar(bucket, x, slot, scale))
        if index % 3 == 0:
            label = bucket["hour"].strftime("%H:00")
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="10">{label}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _bar(bucket: dict, x: float, slot: float, scale: float) -> list[str]:
    bottom = HEIGHT - MARGIN_BOTTOM
    rects = []
    for status, count in bucket["counts"].items():
        if not count:
            continue
        height = count * scale
        bottom -= height
        title = escape(f"{bucket['hour']:%Y-%m-%d %H:00} {status}: {count}")
        rects.append(
            f'<rect x="{x + 1:.1f}" y="{bottom:.1f}" width="{slot - 2:.1f}" '
            f'height="{height:.1f}" fill="{COLOURS.get(status, "#777")}" '
            f'data-status="{escape(status)}" data-count="{count}">'
            f"<title>{title}</title></rect>"
        )
    return rects


def legend() -> SafeString:
    items = "".join(
        f'<span style="color:{colour}">&#9632;</span> {escape(status)} '
        for status, colour in COLOURS.items()
    )
    return mark_safe(items)
