"""Request-path cost: a signup transaction with the outbox event and without it.

The timed unit is the signup view's transaction: ``user.save()`` inside
``transaction.atomic()``, committed. With the outbox, the accounts app's
``post_save`` receiver writes the ``user.signed_up`` event in it. Without,
that receiver is disconnected. Password hashing happens before the timer
starts, because it costs milliseconds and does not touch the database. The
variants alternate signup by signup, so load from other processes hits them
alike.
"""

from __future__ import annotations

import itertools
import time

from common import median, parser, percentile, record, setup_django, truncate

VARIANTS = (
    "without outbox", "with outbox", "with outbox and NOTIFY", "with a hand-written INSERT",
)
USER_NUMBERS = itertools.count()


def signup_seconds(user_model, password_hash: str, number: int) -> float:
    from django.db import transaction

    email = f"bench{number}@example.com"
    user = user_model(
        username=email, email=email, first_name=f"Bench {number}", password=password_hash
    )
    start = time.perf_counter()
    with transaction.atomic():
        user.save()
    return time.perf_counter() - start


def record_signup_by_hand(sender, instance, created, raw=False, **kwargs):
    """Write the same event row as record_event, in one INSERT without the ORM.

    Shows what the outbox's share of the transaction would be without the
    ORM's per-call overhead; the project does not use it.
    """
    import json
    import uuid

    from django.db import connection

    from accounts import events

    if not created or raw:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO outbox_outboxevent (id, type, source, subject, data, created_at, "
            "trace_parent, status, attempts, next_attempt_at, last_error, sns_message_id, "
            "payload_key, claimed_by) VALUES (%s, %s, %s, %s, %s, now(), '', 'pending', "
            "0, now(), '', '', '', '')",
            [uuid.uuid4(), events.USER_SIGNED_UP, "/example/accounts", str(instance.pk),
             json.dumps(events.signed_up_data(instance))],
        )


def run(signups: int, variants) -> dict[str, list[float]]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db.models.signals import post_save

    from accounts.signals import record_signup

    user_model = get_user_model()
    password_hash = make_password("correct horse battery staple")
    outbox_settings = dict(settings.OUTBOX)
    timings = {variant: [] for variant in variants}
    for _ in range(signups):
        for variant in variants:
            connected = variant in ("with outbox", "with outbox and NOTIFY")
            if not connected:
                post_save.disconnect(record_signup, sender=settings.AUTH_USER_MODEL,
                                     dispatch_uid="accounts.signed_up")
            by_hand = variant == "with a hand-written INSERT"
            if by_hand:
                post_save.connect(record_signup_by_hand, sender=settings.AUTH_USER_MODEL,
                                  dispatch_uid="bench.by_hand")
            settings.OUTBOX = {**outbox_settings, "NOTIFY": "NOTIFY" in variant}
            try:
                timings[variant].append(
                    signup_seconds(user_model, password_hash, next(USER_NUMBERS))
                )
            finally:
                if by_hand:
                    post_save.disconnect(sender=settings.AUTH_USER_MODEL,
                                         dispatch_uid="bench.by_hand")
                if not connected:
                    post_save.connect(record_signup, sender=settings.AUTH_USER_MODEL,
                                      dispatch_uid="accounts.signed_up")
    settings.OUTBOX = outbox_settings
    return timings


def breakdown(repetitions: int) -> list[tuple[str, str, str]]:
    """Time the statements a signup is made of, each in its own transaction."""
    import json
    import uuid

    from django.db import connection, transaction

    statements = {
        "round trip (SELECT 1)": ("SELECT 1", lambda number: []),
        "user INSERT": (
            "INSERT INTO auth_user (password, is_superuser, username, first_name, "
            "last_name, email, is_staff, is_active, date_joined) VALUES "
            "('x', false, %s, 'Bench', '', %s, false, true, now())",
            lambda number: [f"piece{number}", f"piece{number}@example.com"],
        ),
        "event INSERT (hand-written)": (
            "INSERT INTO outbox_outboxevent (id, type, source, subject, data, "
            "created_at, trace_parent, status, attempts, next_attempt_at, last_error, "
            "sns_message_id, payload_key, claimed_by) VALUES (%s, 'user.signed_up', "
            "'/bench', %s, %s, now(), '', 'pending', 0, now(), '', '', '', '')",
            lambda number: [uuid.uuid4(), str(number), json.dumps(
                {"user_id": number, "email": f"piece{number}@example.com"})],
        ),
    }
    rows = []
    for name, (sql, parameters) in statements.items():
        timings = []
        for number in range(repetitions):
            with transaction.atomic(), connection.cursor() as cursor:
                start = time.perf_counter()
                cursor.execute(sql, parameters(number))
                timings.append(time.perf_counter() - start)
        rows.append((f"statement: {name}, median", f"{median(timings) * 1000:.2f} ms",
                     "(part of the transaction)"))
    return rows


def main():
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument(
        "--signups", type=int, default=2_000, help="Signups timed per variant."
    )
    arguments.add_argument(
        "--breakdown", action="store_true",
        help="Also time a round trip, the user INSERT and a hand-written event "
        "INSERT alone, 500 times each.",
    )
    options = arguments.parse_args()
    setup_django()
    truncate("auth_user", "outbox_outboxevent")
    run(100, VARIANTS)  # warm-up: connections, caches, plans
    truncate("auth_user", "outbox_outboxevent")
    timings = run(options.signups, VARIANTS)
    truncate("auth_user", "outbox_outboxevent")

    base = timings["without outbox"]
    rows = []
    for variant in VARIANTS[1:]:
        values = timings[variant]
        for name, function in (("median", median), ("p99", lambda v: percentile(v, 0.99))):
            figure, baseline = function(values) * 1000, function(base) * 1000
            rows.append((
                f"signup transaction {variant}, {name}",
                f"{figure:.2f} ms (+{(figure / baseline - 1) * 100:.0f}%)",
                f"{baseline:.2f} ms without outbox",
            ))
    if options.breakdown:
        rows += breakdown(500)
        truncate("auth_user", "outbox_outboxevent")
    notes = [
        f"{options.signups:,} signups per variant, alternating; each is INSERT "
        "auth_user (+ INSERT outbox_outboxevent) and COMMIT.",
    ]
    record("Signup transaction", rows, notes, save=not options.no_record)


if __name__ == "__main__":
    main()
