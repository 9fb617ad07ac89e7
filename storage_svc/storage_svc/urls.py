from django.contrib import admin
from django.urls import include, path

from kit.health import database_check, health_view, ready_view
from kit.metrics import metrics_view
from registry.metrics import run_metrics

urlpatterns = [
    path("health", health_view("storage_svc")),
    path("ready", ready_view("storage_svc", {"database": database_check()})),
    path("metrics", metrics_view(run_metrics)),
    path("admin/", admin.site.urls),
    path("", include("registry.urls")),
]

handler404 = "kit.errors.json_404"
handler500 = "kit.errors.json_500"
handler400 = "kit.errors.json_400"
