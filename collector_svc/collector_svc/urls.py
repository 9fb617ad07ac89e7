from django.urls import path

from kit.health import health_view, ready_view
from kit.metrics import metrics_view
from sources import views

urlpatterns = [
    path("health", health_view("collector_svc")),
    path("ready", ready_view("collector_svc", {})),
    path("metrics", metrics_view()),
    path("info", views.info),
    path("batch", views.batch),
    path("log", views.request_log),
]

handler404 = "kit.errors.json_404"
handler500 = "kit.errors.json_500"
handler400 = "kit.errors.json_400"
