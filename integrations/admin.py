from django.contrib import admin

from integrations.models import Delivery, DeliveryAttempt
from outbox.admin import OutboxEventAdmin
from outbox.models import OutboxEvent


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "consumer", "outcome", "response_status", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "event_id", "integration", "event_type", "status", "attempts", "updated_at",
        "last_error",
    )
    list_filter = ("integration", "status", "event_type")
    search_fields = ("=event__id",)
    show_full_result_count = False
    readonly_fields = (
        "event", "integration", "event_type", "status", "attempts", "last_error",
        "response_status", "sqs_message_id", "lease_owner", "lease_until",
        "created_at", "updated_at", "delivered_at",
    )
    inlines = [DeliveryAttemptInline]

    def has_add_permission(self, request):
        return False


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fk_name = "event"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "integration", "status", "attempts", "last_error", "response_status",
        "created_at", "updated_at", "delivered_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


# The outbox app knows nothing of integrations, so this app extends the
# event admin with each event's deliveries.
admin.site.unregister(OutboxEvent)


@admin.register(OutboxEvent)
class EventAdmin(OutboxEventAdmin):
    inlines = [*OutboxEventAdmin.inlines, DeliveryInline]
