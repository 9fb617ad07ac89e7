from django.contrib import admin
from django.urls import include, path

from kit.health import database_check, service_routes
from kit.service_auth import service_token_required

urlpatterns = [
    # Public-facing: only a caller with the service token (Prometheus) reads the gateway's metrics.
    *service_routes("gateway_site", {"database": database_check()}, guard_metrics=service_token_required),
    path("django-admin/", admin.site.urls),
    path("api/", include("gateway_site.api.urls")),
    path("", include("gateway_site.web.urls")),
]

handler400 = "gateway_site.web.views.errors.bad_request"
handler403 = "gateway_site.web.views.errors.forbidden"
handler500 = "gateway_site.web.views.errors.server_error"
handler404 = "gateway_site.web.views.errors.not_found"
