from django.urls import path

from kit.errors import json_400 as handler400  # noqa: F401 -- Django reads the handlers from here
from kit.errors import json_404 as handler404  # noqa: F401
from kit.errors import json_500 as handler500  # noqa: F401
from kit.health import service_routes
from sources import views

urlpatterns = [
    *service_routes("collector_svc", {}),
    path("info", views.info),
    path("batch", views.batch),
    path("log", views.request_log),
]
