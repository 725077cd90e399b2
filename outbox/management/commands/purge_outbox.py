from datetime import timedelta

from django.core.files.storage import InvalidStorageError, storages
from django.core.management.base import BaseCommand, CommandError

from outbox.purge import DEFAULT_BATCH_SIZE, purge_published


class Command(BaseCommand):
    help = (
        "Delete events published more than --older-than days ago, with "
        "their relay attempts, deliveries and claim-check payloads, in batches. "
        "Pending and failed events are never deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=float, required=True, metavar="DAYS",
            help="Age in days (fractions allowed) beyond which published events go.",
        )
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
            help=f"Events per transaction (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--archive", action="store_true",
            help="Write each batch as JSON Lines to --archive-storage before deleting.",
        )
        parser.add_argument(
            "--archive-storage", default="outbox_archive", metavar="ALIAS",
            help="STORAGES alias that receives the archive (default outbox_archive).",
        )

    def handle(self, *args, **options):
        days = options["older_than"]
        # timedelta takes at most 999,999,999 days; NaN fails both tests.
        if not 0 <= days <= 999_999_999:
            raise CommandError(
                f"--older-than must be a number of days from 0 to 999999999, got {days:g}."
            )
        if options["batch_size"] < 1:
            raise CommandError(
                f"--batch-size must be at least 1, got {options['batch_size']}."
            )
        storage = self._archive_storage(options) if options["archive"] else None
        result = purge_published(
            timedelta(days=days),
            batch_size=options["batch_size"],
            archive_storage=storage,
            progress=self._progress if options["verbosity"] >= 1 else None,
        )
        self.stdout.write(
            f"Removed {result.events} event(s) published before "
            f"{result.cutoff:%Y-%m-%d %H:%M:%S} UTC in {result.batches} batch(es)."
        )
        for label, count in sorted(result.related.items()):
            self.stdout.write(f"Removed {count} {label} row(s).")
        self.stdout.write(f"Removed {result.payloads} claim-check payload(s).")
        for name in result.archives:
            self.stdout.write(f"Archived to {name}")

    def _archive_storage(self, options):
        alias = options["archive_storage"]
        try:
            return storages[alias]
        except InvalidStorageError as error:
            raise CommandError(
                f"storage {alias!r} is not configured: add it to settings.STORAGES "
                "(e.g. storages.backends.s3.S3Storage) or pass --archive-storage."
            ) from error

    def _progress(self, result):
        self.stderr.write(
            f"batch {result.batches}: {result.events} event(s) removed so far"
        )
