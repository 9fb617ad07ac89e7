from django.conf import settings
from django.urls import path

from kit.clients import StorageClient
from kit.health import database_check, health_view, ready_view
from kit.metrics import metrics_view
from ml_svc import views


def storage_ready() -> None:
    StorageClient(settings.STORAGE_URL, settings.SERVICE_TOKEN).ready()


urlpatterns = [
    path("health", health_view("ml_svc")),
    path("ready", ready_view("ml_svc", {"queue_database": database_check(), "storage_svc": storage_ready})),
    path("metrics", metrics_view(views.queue_metrics)),
    path("compare", views.compare),
    path("canonicalize", views.canonicalize),
    path("architectures", views.architectures),
    path("jobs/train", views.start_training),
    path("jobs/collect", views.start_collect),
    path("jobs/fine-tune", views.start_fine_tune),
]

handler404 = "kit.errors.json_404"
handler500 = "kit.errors.json_500"
handler400 = "kit.errors.json_400"
