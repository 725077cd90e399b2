from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from integrations import checks  # noqa: F401  (registers the system checks)
        from integrations import status
        from outbox import stats

        stats.register_section("integrations", status.queue_figures, label="integration")
