from django.contrib import admin
from django.urls import include, path

from kit.health import database_check, health_view, ready_view

urlpatterns = [
    path("health", health_view("gateway_site")),
    path("ready", ready_view("gateway_site", {"database": database_check()})),
    path("django-admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("web.urls")),
]

handler403 = "web.views.forbidden"
handler404 = "web.views.not_found"
