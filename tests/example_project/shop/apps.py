from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"

    def ready(self):
        from shop import signals  # noqa: F401  (connects the post_save receiver)
