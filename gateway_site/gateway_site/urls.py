from django.contrib import admin
from django.urls import include, path

from kit.health import database_check, health_view, ready_view
from kit.metrics import metrics_view
from kit.service_auth import service_token_required

urlpatterns = [
    path("health", health_view("gateway_site")),
    path("ready", ready_view("gateway_site", {"database": database_check()})),
    # Public-facing: only a caller with the service token (Prometheus) reads the gateway's metrics.
    path("metrics", service_token_required(metrics_view())),
    path("django-admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("web.urls")),
]

handler400 = "web.views.bad_request"
handler403 = "web.views.forbidden"
handler500 = "web.views.server_error"
handler404 = "web.views.not_found"
