from django.urls import path, re_path

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
    path("uploads", views.upload_create),
    re_path(r"^uploads/(?P<upload_id>[0-9a-f]{32})$", views.upload_detail),
    re_path(r"^uploads/(?P<upload_id>[0-9a-f]{32})/batch$", views.upload_batch),
]
