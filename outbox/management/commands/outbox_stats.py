import json

from django.core.management.base import BaseCommand

from outbox import stats


class Command(BaseCommand):
    help = (
        "Print the outbox backlog, the last hour's publications and failures, and "
        "the figures other apps register (the integration queues)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true",
            help="Print one JSON object instead of text.",
        )

    def handle(self, *args, **options):
        figures = stats.collect()
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=2, default=str))
            return
        outbox = figures.pop("outbox")
        self.stdout.write("outbox")
        self.stdout.write(f"  pending               {outbox['pending']}")
        self.stdout.write(
            "  oldest pending age    "
            f"{stats.format_age(outbox['oldest_pending_age_seconds'])}"
        )
        self.stdout.write(f"  published last hour   {outbox['published_last_hour']}")
        self.stdout.write(f"  failed last hour      {outbox['failed_last_hour']}")
        for section, rows in figures.items():
            self.stdout.write(section)
            for label, row in rows.items():
                self.stdout.write(f"  {label}: {format_row(row)}")


def format_row(row: dict) -> str:
    if "error" in row:
        return f"unavailable ({row['error']})"
    parts = []
    for name, value in row.items():
        if name.endswith("_age_seconds"):
            parts.append(f"{name.removesuffix('_seconds')}={stats.format_age(value)}")
        else:
            parts.append(f"{name}={value}")
    return " ".join(parts)
