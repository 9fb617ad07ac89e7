from django.urls import path

from collector_svc.sources import views
from kit.errors import json_400 as handler400  # noqa: F401 -- Django reads the handlers from here
from kit.errors import json_404 as handler404  # noqa: F401
from kit.errors import json_500 as handler500  # noqa: F401
from kit.health import service_routes

urlpatterns = [
    *service_routes("collector_svc", {}),
    path("info", views.info),
    path("batch", views.batch),
    path("log", views.request_log),
]
