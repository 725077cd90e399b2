from django.urls import path

from outbox.metrics import metrics_view

app_name = "outbox"
urlpatterns = [
    path("metrics", metrics_view, name="metrics"),
]
