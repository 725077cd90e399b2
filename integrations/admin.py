"""Admin for deliveries, and the event admin extended with what needs queues.

The outbox app never imports integrations, so this module replaces its
event admin with a subclass that adds one delivery column and filter per
integration, the deliveries on the event page, the queue actions (replay to
one integration, redrive) and the queue figures on the dashboard.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from integrations import dlq, registry, status
from integrations.models import Delivery, DeliveryAttempt
from outbox import admin as outbox_admin
from outbox import stats
from outbox.admin import OutboxEventAdmin, ReasonForm
from outbox.masking import can_view_personal_data, mask_text
from outbox.models import OutboxEvent

NOT_RECEIVED = "not_received"
NOT_SUBSCRIBED = "not_subscribed"
STATE_CLASSES = {
    Delivery.Status.DELIVERED: "delivered",
    Delivery.Status.RETRYING: "retrying",
    Delivery.Status.IN_PROGRESS: "retrying",
    Delivery.Status.DEAD_LETTERED: "dead",
}


class MaskedErrorMixin:
    """Show ``last_error`` or ``error`` with e-mail addresses masked when the
    user lacks the personal-data permission."""

    error_field = "last_error"

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if not can_view_personal_data(request.user):
            fields = ["masked_error" if f == self.error_field else f for f in fields]
        return fields

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description="error")
    def masked_error(self, obj):
        return mask_text(getattr(obj, self.error_field))


class DeliveryAttemptInline(MaskedErrorMixin, admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "consumer", "outcome", "response_status", "error")
    error_field = "error"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(MaskedErrorMixin, admin.ModelAdmin):
    list_display = (
        "event_id", "integration", "event_type", "status", "attempts", "updated_at",
    )
    list_filter = ("integration", "status", "event_type")
    search_fields = ("=event__id",)
    show_full_result_count = False
    paginator = outbox_admin.CappedCountPaginator
    fields = (
        "event", "integration", "event_type", "status", "attempts", "last_error",
        "response_status", "sqs_message_id", "lease_owner", "lease_until",
        "created_at", "updated_at", "delivered_at",
    )
    inlines = [DeliveryAttemptInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryInline(MaskedErrorMixin, admin.TabularInline):
    model = Delivery
    fk_name = "event"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "integration", "status", "attempts", "last_error", "response_status",
        "sqs_message_id", "lease_owner", "created_at", "updated_at", "delivered_at",
    )
    verbose_name_plural = "deliveries (open one for its attempts)"

    def has_add_permission(self, request, obj=None):
        return False


def delivery_filter(integration: str, event_types: tuple[str, ...]):
    """Build the list filter of one integration's delivery status."""

    class DeliveryStatusFilter(admin.SimpleListFilter):
        title = f"delivery at {integration}"
        parameter_name = f"delivery_{integration}"

        def lookups(self, request, model_admin):
            return [
                *[(value, status.LABELS[value]) for value in Delivery.Status.values],
                (NOT_RECEIVED, status.NOT_RECEIVED),
                (NOT_SUBSCRIBED, status.NOT_SUBSCRIBED),
            ]

        def queryset(self, request, queryset):
            value = self.value()
            at_integration = Delivery.objects.filter(integration=integration)
            if value in Delivery.Status.values:
                # Served by delivery_status_idx (integration, status).
                event_ids = at_integration.filter(status=value).values("event_id")
                return queryset.filter(id__in=event_ids)
            if value == NOT_RECEIVED:
                # An anti-join on delivery_event_integration_uniq.
                received = at_integration.filter(event_id=OuterRef("pk"))
                return queryset.filter(type__in=event_types).filter(~Exists(received))
            if value == NOT_SUBSCRIBED:
                return queryset.exclude(type__in=event_types)
            return queryset

    return DeliveryStatusFilter


class EventChangeList(ChangeList):
    """Load the page's delivery states with one query after the page's rows."""

    def get_results(self, request):
        super().get_results(request)
        events = list(self.result_list)
        table = status.delivery_states(events, self.model_admin.subscribed(request))
        for event in events:
            event.delivery_states = table[str(event.id)]


def delivery_column(integration: str):
    @admin.display(description=integration)
    def column(event):
        state = getattr(event, "delivery_states", {}).get(integration)
        if state is None:
            return "-"
        css = STATE_CLASSES.get(state.status, "none")
        return format_html(
            '<span class="delivery-state delivery-{}" data-integration="{}">{}</span>',
            css, integration, state.label,
        )

    column.__name__ = f"delivery_{integration}"
    return column


class IntegrationForm(ReasonForm):
    integration = forms.ChoiceField(choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["integration"].choices = [(n, n) for n in registry.enabled_names()]
        self.order_fields(["integration", "reason"])


def log_without_object(request, text: str, message: str) -> None:
    LogEntry.objects.create(
        user_id=request.user.pk,
        content_type_id=ContentType.objects.get_for_model(OutboxEvent).pk,
        object_id=None,
        object_repr=text[:200],
        action_flag=CHANGE,
        change_message=message,
    )


admin.site.unregister(OutboxEvent)


@admin.register(OutboxEvent)
class EventAdmin(OutboxEventAdmin):
    inlines = [*OutboxEventAdmin.inlines, DeliveryInline]
    actions = [*OutboxEventAdmin.actions, "replay_to_integration", "redrive_events"]
    dashboard_template = "admin/integrations/dashboard.html"

    def subscribed(self, request) -> dict[str, tuple[str, ...]]:
        if not hasattr(request, "_outbox_subscriptions"):
            request._outbox_subscriptions = status.subscriptions()
        return request._outbox_subscriptions

    def get_changelist(self, request, **kwargs):
        return EventChangeList

    def get_list_display(self, request):
        base = list(super().get_list_display(request))
        position = base.index("status") + 1
        columns = [delivery_column(name) for name in self.subscribed(request)]
        return (*base[:position], *columns, *base[position:])

    def get_list_filter(self, request):
        filters = [
            delivery_filter(name, event_types)
            for name, event_types in self.subscribed(request).items()
        ]
        return (*super().get_list_filter(request), *filters)

    @admin.action(
        description="Replay to one integration (send to its queue)", permissions=["change"]
    )
    def replay_to_integration(self, request, queryset):
        form = IntegrationForm(request.POST if outbox_admin.is_confirmed(request) else None)
        if not form.is_valid():
            return outbox_admin.confirmation_response(
                self, request, queryset, action="replay_to_integration", form=form,
                title="Replay events to one integration",
                text="Each published event is sent straight to the chosen "
                "integration's queue, past the topic, so no other integration is "
                "called again. Events it does not subscribe to, has already "
                "delivered, or that are not published yet are skipped.",
            )
        name = form.cleaned_data["integration"]
        events = queryset.order_by("created_at")[: outbox_admin.ACTION_LIMIT]
        result = dlq.replay(name, events)
        outbox_admin.log_event_changes(
            request, result.sent,
            f"Replayed to integration {name} by sending to its queue."
            + outbox_admin.reason_suffix(form),
        )
        self.message_user(
            request,
            f"Sent {len(result.sent)} event(s) to the queue of {name}. Skipped: "
            f"{len(result.not_subscribed)} not subscribed, {len(result.already_delivered)} "
            f"already delivered, {len(result.not_published)} not published.",
        )
        if result.failed:
            self.message_user(
                request, f"Sending failed for {len(result.failed)} event(s): "
                + "; ".join(result.failed[:5]), messages.ERROR,
            )
        return None

    @admin.action(
        description="Redrive from an integration's dead-letter queue",
        permissions=["change"],
    )
    def redrive_events(self, request, queryset):
        form = IntegrationForm(request.POST if outbox_admin.is_confirmed(request) else None)
        if not form.is_valid():
            return outbox_admin.confirmation_response(
                self, request, queryset, action="redrive_events", form=form,
                title="Redrive dead letters of the selected events",
                text="The chosen integration's dead-letter messages of these events "
                "move back to its queue, so its consumer tries them again. Other "
                "dead letters stay where they are.",
            )
        name = form.cleaned_data["integration"]
        event_ids = {str(i) for i in outbox_admin.limited_ids(queryset)}
        result = dlq.redrive(name, event_ids=event_ids)
        self._report_redrive(request, name, result, form)
        return None

    def _report_redrive(self, request, name, result: dlq.RedriveResult, form=None):
        reason = outbox_admin.reason_suffix(form) if form is not None else ""
        message = f"Redrove {result.moved} message(s) from the dead-letter queue of {name}."
        outbox_admin.log_event_changes(request, result.moved_event_ids, message + reason)
        log_without_object(request, f"dead-letter queue of {name}", message + reason)
        self.message_user(request, f"Moved {result.moved} message(s) from the "
                          f"dead-letter queue of {name} back to its queue.")
        if result.limit_reached:
            self.message_user(request, "The run stopped at its limit; run it again "
                              "to move the rest.", messages.WARNING)
        if result.failed:
            self.message_user(request, f"{len(result.failed)} message(s) could not be "
                              "sent: " + "; ".join(result.failed[:5]), messages.ERROR)

    # Dashboard and dead-letter pages -------------------------------------------

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_dead_letters"
        view = self.admin_site.admin_view(self.dead_letters_view)
        return [
            path("dashboard/dead-letters/<str:integration>/", view, name=name),
            *super().get_urls(),
        ]

    def dashboard_context(self, request) -> dict:
        context = super().dashboard_context(request)
        rows = []
        for name, figures in status.queue_figures().items():
            rows.append({
                "integration": name,
                "figures": figures,
                "oldest_age": stats.format_age(figures.get("oldest_age_seconds")),
                "dead_letter_oldest_age": stats.format_age(
                    figures.get("dead_letter_oldest_age_seconds")
                ),
            })
        context["queues"] = rows
        return context

    def dead_letters_view(self, request, integration):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if integration not in registry.enabled_names():
            raise Http404(f"no enabled integration named {integration!r}")
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            return self._redrive_post(request, integration)
        try:
            letters = dlq.peek(integration)
        except ImproperlyConfigured as error:
            letters = []
            self.message_user(request, str(error), messages.ERROR)
        if not can_view_personal_data(request.user):
            for letter in letters:
                letter.reason = mask_text(letter.reason)
        return self._render_dead_letters(request, integration, letters=letters)

    def _redrive_post(self, request, integration):
        selected = set(request.POST.getlist("message_id"))
        redrive_all = request.POST.get("scope") == "all"
        if not redrive_all and not selected:
            self.message_user(request, "Select messages, or use Redrive all.",
                              messages.WARNING)
            return HttpResponseRedirect(request.path)
        if request.POST.get("confirm") != "yes":
            return self._render_dead_letters(
                request, integration, confirm=True, selected=sorted(selected),
                redrive_all=redrive_all,
            )
        result = dlq.redrive(integration, message_ids=None if redrive_all else selected)
        self._report_redrive(request, integration, result)
        info = self.opts.app_label, self.opts.model_name
        return HttpResponseRedirect(reverse("admin:%s_%s_dashboard" % info))

    def _render_dead_letters(self, request, integration, **extra):
        context = {
            **self.admin_site.each_context(request),
            "title": f"Dead letters of {integration}",
            "opts": self.opts,
            "integration": integration,
            "has_change_permission": self.has_change_permission(request),
            "peek_limit": dlq.PEEK_LIMIT,
            **extra,
        }
        return TemplateResponse(request, "admin/integrations/dead_letters.html", context)
