"""Admin for outbox events: a list that stays fast on millions of rows, a
readable event page, repair actions and a dashboard.

The integrations app extends ``OutboxEventAdmin`` with delivery columns,
filters and queue actions, so this module never refers to queues.
"""

from __future__ import annotations

import json
import logging
import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import OperationalError, connection, connections, transaction
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Lower
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from outbox import charts, stats
from outbox.masking import can_view_personal_data, mask_data, mask_text
from outbox.messages import build_cloudevent
from outbox.models import OutboxEvent, RelayAttempt

logger = logging.getLogger(__name__)

# Pages count at most this many rows, so a page never runs a full COUNT(*).
COUNT_LIMIT = 10_000
# On PostgreSQL a count also stops after this long, because a filter that
# matches few of millions of rows must read them all to count to the limit.
COUNT_TIMEOUT_MS = 500
# One action run changes at most this many events; run it again for more.
ACTION_LIMIT = 10_000
# Same expression as the outbox_data_email_idx index, so searches use it.
DATA_EMAIL = Lower(KeyTextTransform("email", "data"))
SUBJECTS_PER_EMAIL = 100


class CappedCountPaginator(Paginator):
    """Count at most ``COUNT_LIMIT + 1`` rows: a bounded subquery, not the table.

    A count that times out on PostgreSQL is reported as ``COUNT_LIMIT + 1``.
    """

    @cached_property
    def count(self):
        queryset = self.object_list.order_by()[: COUNT_LIMIT + 1]
        database = connections[queryset.db]
        if database.vendor != "postgresql":
            return queryset.count()
        try:
            with transaction.atomic(using=queryset.db), database.cursor() as cursor:
                cursor.execute("SHOW statement_timeout")
                previous = cursor.fetchone()[0]
                cursor.execute("SET LOCAL statement_timeout = %s", [COUNT_TIMEOUT_MS])
                count = queryset.count()
                # Restored for the rest of an enclosing transaction, if any.
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
                return count
        except OperationalError:
            logger.info("admin count timed out", extra={"timeout_ms": COUNT_TIMEOUT_MS})
            return COUNT_LIMIT + 1


class EventTypeFilter(admin.SimpleListFilter):
    title = "event type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(event_type, event_type) for event_type in distinct_event_types()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(type=self.value())
        return queryset


# A loose index scan over outbox_type_idx: one index probe per distinct type
# instead of reading every row, as SELECT DISTINCT would.
_DISTINCT_TYPES_SQL = """
WITH RECURSIVE types AS (
    (SELECT type FROM {table} ORDER BY type LIMIT 1)
    UNION ALL
    SELECT (SELECT type FROM {table} WHERE type > types.type ORDER BY type LIMIT 1)
    FROM types WHERE types.type IS NOT NULL
)
SELECT type FROM types WHERE type IS NOT NULL
"""


def distinct_event_types() -> list[str]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_DISTINCT_TYPES_SQL.format(table=OutboxEvent._meta.db_table))
            return [row[0] for row in cursor.fetchall()]
    return list(
        OutboxEvent.objects.order_by("type").values_list("type", flat=True).distinct()
    )


def search_filter(term: str) -> Q:
    """Build an indexed filter for an event id, a subject or an e-mail address.

    An e-mail address matches the events whose data has it under ``email``
    (an expression index) and every event of the same subjects, so searching
    a signup's address also finds that user's later events.
    """
    try:
        event_id = uuid.UUID(term)
    except ValueError:
        event_id = None
    if event_id is not None:
        return Q(id=event_id) | Q(subject=term)
    if "@" in term:
        # Both lists are read first, so the final query is an OR of two
        # index lookups by value, which PostgreSQL turns into a BitmapOr.
        matches = list(
            OutboxEvent.objects.alias(email=DATA_EMAIL)
            .filter(email=term.lower())
            .order_by()
            .values_list("id", "subject")[:SUBJECTS_PER_EMAIL]
        )
        subjects = {subject for _, subject in matches if subject}
        return Q(id__in=[event_id for event_id, _ in matches]) | Q(subject__in=subjects)
    return Q(subject=term)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Recorded in the admin log with the change.",
    )


def confirmation_response(model_admin, request, queryset, *, action, title, text, form):
    """Render the confirmation page of ``action`` for the selected events."""
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "text": text,
        "form": form,
        "action": action,
        "opts": opts,
        "events": list(queryset.order_by("-created_at")[:20]),
        "count": queryset.order_by()[: ACTION_LIMIT + 1].count(),
        "action_limit": ACTION_LIMIT,
        "select_across": request.POST.get("select_across", "0"),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": model_admin.media,
    }
    return TemplateResponse(request, "admin/outbox/action_confirmation.html", context)


def is_confirmed(request) -> bool:
    return request.POST.get("confirm") == "yes"


def limited_ids(queryset) -> list:
    return list(queryset.order_by("created_at").values_list("id", flat=True)[:ACTION_LIMIT])


def log_event_changes(request, event_ids, message: str) -> None:
    """Record one admin log entry per changed event."""
    LogEntry.objects.log_actions(
        request.user.pk,
        OutboxEvent.objects.filter(id__in=event_ids).order_by(),
        CHANGE,
        change_message=message,
    )


def reason_suffix(form) -> str:
    reason = form.cleaned_data.get("reason", "").strip()
    return f" Reason: {reason}" if reason else ""


class RelayAttemptInline(admin.TabularInline):
    model = RelayAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "relay", "error")
    readonly_fields = fields
    verbose_name_plural = "relay attempts (failed publications)"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = (
        "id", "type", "subject", "status", "attempts", "created_at", "published_at",
    )
    list_filter = ("status", EventTypeFilter, ("created_at", admin.DateFieldListFilter))
    # get_search_results() replaces Django's search; this only shows the box.
    search_fields = ("=id",)
    search_help_text = (
        "Event id, subject, or an e-mail address (finds the events whose data has "
        "it and the other events of the same subject)."
    )
    show_full_result_count = False
    # Facet counts run one COUNT per filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 50
    ordering = ("-created_at",)
    actions = ["retry_events", "replay_events"]
    inlines = [RelayAttemptInline]
    dashboard_template = "admin/outbox/dashboard.html"

    # Event page ---------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        cloudevent = "cloudevent" if can_view_personal_data(request.user) else (
            "masked_cloudevent"
        )
        error = "error" if can_view_personal_data(request.user) else "masked_error"
        return [
            (None, {"fields": ("id", "type", "source", "subject", "created_at")}),
            ("Publication", {"fields": (
                "status", "attempts", "next_attempt_at", error, "published_at",
                "sns_message_id", "payload_key", "trace_parent",
            )}),
            ("Relay lease", {"fields": ("claimed_by", "claimed_until")}),
            ("CloudEvent", {"fields": (cloudevent,)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [
            field for _, options in self.get_fieldsets(request, obj)
            for field in options["fields"]
        ]

    @admin.display(description="CloudEvent")
    def cloudevent(self, obj):
        return format_html("<pre>{}</pre>", _pretty(build_cloudevent(obj)))

    @admin.display(description="CloudEvent (personal data masked)")
    def masked_cloudevent(self, obj):
        cloudevent = build_cloudevent(obj)
        cloudevent["data"] = mask_data(cloudevent["data"])
        return format_html("<pre>{}</pre>", _pretty(cloudevent))

    @admin.display(description="last error")
    def error(self, obj):
        return obj.last_error

    @admin.display(description="last error")
    def masked_error(self, obj):
        return mask_text(obj.last_error)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only, so the save buttons would do nothing.
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Events leave the table only through purge_outbox, which never
        # removes pending or failed ones.
        return False

    # Event list ---------------------------------------------------------------

    def get_list_display(self, request):
        error = "error_summary" if can_view_personal_data(request.user) else (
            "masked_error_summary"
        )
        return (*self.list_display, error)

    @admin.display(description="last error")
    def error_summary(self, obj):
        return obj.last_error[:120]

    @admin.display(description="last error")
    def masked_error_summary(self, obj):
        return mask_text(obj.last_error)[:120]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(search_filter(term)), False

    # Actions ------------------------------------------------------------------

    @admin.action(description="Retry failed events", permissions=["change"])
    def retry_events(self, request, queryset):
        return self._requeue_action(
            request, queryset, action="retry_events",
            from_status=OutboxEvent.Status.FAILED,
            title="Retry failed events",
            text="Failed events go back to pending with their attempts reset, "
            "so the relay publishes them again. Events in another status are "
            "left as they are.",
            log_message="Retried: status failed to pending, attempts reset.",
            verb="Retried",
        )

    @admin.action(
        description="Replay to every subscriber (publish again)", permissions=["change"]
    )
    def replay_events(self, request, queryset):
        return self._requeue_action(
            request, queryset, action="replay_events",
            from_status=OutboxEvent.Status.PUBLISHED,
            title="Replay events to every subscriber",
            text="Published events go back to pending, so the relay publishes "
            "them to the topic again. Integrations that already delivered an "
            "event skip the copy; the others deliver it.",
            log_message="Replayed: status published to pending for publication to "
            "every subscriber.",
            verb="Replayed",
        )

    def _requeue_action(
        self, request, queryset, *, action, from_status, title, text, log_message, verb
    ):
        """Confirm, then put the selected events in ``from_status`` back to pending."""
        form = ReasonForm(request.POST if is_confirmed(request) else None)
        if not form.is_valid():
            return confirmation_response(
                self, request, queryset, action=action, form=form, title=title, text=text
            )
        ids = limited_ids(queryset.filter(status=from_status))
        changed = self._requeue(ids)
        log_event_changes(request, ids, log_message + reason_suffix(form))
        self._report(request, verb, changed, queryset, from_status.value)
        return None

    def _requeue(self, ids) -> int:
        return OutboxEvent.objects.filter(id__in=ids).update(
            status=OutboxEvent.Status.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            claimed_until=None,
            claim_token=None,
        )

    def _report(self, request, verb, changed, queryset, status):
        self.message_user(request, f"{verb} {changed} event(s); the relay publishes them next.")
        selected = queryset.order_by()[: ACTION_LIMIT + 1].count()
        if selected > changed:
            self.message_user(
                request,
                f"{selected - changed} selected event(s) were not {status} or above the "
                f"limit of {ACTION_LIMIT} per run, and were left unchanged.",
                messages.WARNING,
            )

    # Dashboard ----------------------------------------------------------------

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_dashboard"
        dashboard = path(
            "dashboard/", self.admin_site.admin_view(self.dashboard_view), name=name
        )
        return [dashboard, *super().get_urls()]

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Outbox dashboard",
            "opts": self.opts,
            "has_change_permission": self.has_change_permission(request),
            **self.dashboard_context(request),
        }
        return TemplateResponse(request, self.dashboard_template, context)

    def dashboard_context(self, request) -> dict:
        now = timezone.now()
        figures = stats.outbox_figures(now)
        return {
            "outbox": figures,
            "oldest_pending_age": stats.format_age(figures["oldest_pending_age_seconds"]),
            "chart": charts.hourly_chart(stats.hourly_counts(now)),
            "legend": charts.legend(),
        }


def _pretty(document) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)
