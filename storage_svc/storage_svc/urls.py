from django.contrib import admin
from django.urls import include, path

from kit.errors import json_400 as handler400  # noqa: F401 -- Django reads the handlers from here
from kit.errors import json_404 as handler404  # noqa: F401
from kit.errors import json_500 as handler500  # noqa: F401
from kit.health import database_check, service_routes
from storage_svc.registry.metrics import storage_metrics

urlpatterns = [
    *service_routes("storage_svc", {"database": database_check()}, metrics=storage_metrics),
    path("admin/", admin.site.urls),
    path("", include("storage_svc.registry.urls")),
]
