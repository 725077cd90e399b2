import secrets
import signal
import threading
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings
from django.utils import timezone

from accounts import demo
from integrations import registry
from integrations.consumer import Consumer
from outbox.management.arguments import port_number
from outbox.models import OutboxEvent
from outbox.relay import Relay


class Command(BaseCommand):
    help = (
        "Run the whole pipeline in this process against an embedded moto server: "
        "sign users up over HTTP, relay, consume, and print each event's status."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--serve", action="store_true",
            help="Keep the web server, relay and consumers running until Ctrl-C.",
        )
        parser.add_argument(
            "--port", type=port_number, default=8000,
            help="Port of the web server with --serve (default 8000; 0 picks a free one).",
        )

    def handle(self, *args, serve, port, **options):
        stack = demo.LocalStack().start(web_port=port if serve else 0)
        try:
            demo.prepare(self.stdout.write)
            if serve:
                self.serve(stack)
            else:
                self.run_once(stack)
        finally:
            stack.stop()

    def run_once(self, stack):
        started = timezone.now()
        demo.sign_up_and_log_in(stack.base_url, uuid.uuid4().hex[:6], self.stdout.write)
        consumers = [Consumer(name) for name in registry.enabled_names()]
        try:
            demo.drain(consumers)
        finally:
            for consumer in consumers:
                consumer.close()
        events = list(OutboxEvent.objects.filter(created_at__gte=started).order_by("created_at"))
        self.stdout.write("")
        for line in demo.status_table(events):
            self.stdout.write(line)
        if not demo.all_delivered(events):
            raise CommandError("some events were not delivered where they belong (see table)")
        self.stdout.write(self.style.SUCCESS(
            f"all {len(events)} events delivered where they belong"
        ))

    def serve(self, stack):
        # Short long polls, so Ctrl-C stops the consumer threads within
        # about two seconds instead of up to twenty.
        with override_settings(
            INTEGRATIONS={**settings.INTEGRATIONS, "WAIT_TIME_SECONDS": 2}
        ):
            self._serve(stack)

    def _serve(self, stack):
        password = secrets.token_urlsafe(12)
        admin, _ = get_user_model().objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        admin.set_password(password)
        admin.save()

        stop = threading.Event()
        workers = [Relay()] + [Consumer(name) for name in registry.enabled_names()]
        threads = [
            threading.Thread(target=workers[0].run, args=(stop, 0.5), daemon=True),
            *[threading.Thread(target=c.run, args=(stop,), daemon=True) for c in workers[1:]],
        ]
        for thread in threads:
            thread.start()
        self.stdout.write(f"sign up at  {stack.base_url}/accounts/signup/")
        self.stdout.write(f"admin at    {stack.base_url}/admin/  (admin / {password})")
        self.stdout.write("Ctrl-C stops.")
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            stop.set()
        for thread in threads:
            thread.join(timeout=25)
        for worker in workers:
            worker.close()
