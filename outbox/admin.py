import json

from django.contrib import admin
from django.utils.html import format_html

from outbox.messages import build_cloudevent
from outbox.models import OutboxEvent, RelayAttempt


class RelayAttemptInline(admin.TabularInline):
    model = RelayAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "relay", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = (
        "id", "type", "subject", "status", "attempts", "created_at", "published_at",
        "last_error",
    )
    list_filter = ("status", "type")
    search_fields = ("=id", "=subject")
    date_hierarchy = "created_at"
    show_full_result_count = False
    ordering = ("-created_at",)
    readonly_fields = (
        "id", "type", "source", "subject", "created_at", "status", "attempts",
        "next_attempt_at", "last_error", "published_at", "sns_message_id",
        "claimed_by", "claimed_until", "payload_key", "trace_parent", "cloudevent",
    )
    exclude = ("data", "claim_token")
    inlines = [RelayAttemptInline]

    @admin.display(description="CloudEvent")
    def cloudevent(self, obj):
        return format_html(
            "<pre>{}</pre>", json.dumps(build_cloudevent(obj), indent=2, ensure_ascii=False)
        )

    def has_add_permission(self, request):
        return False
