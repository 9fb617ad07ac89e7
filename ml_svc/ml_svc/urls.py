from django.urls import path

import kit.converters  # noqa: F401 - registers <id:>
from kit.errors import json_400 as handler400  # noqa: F401 -- Django reads the handlers from here
from kit.errors import json_404 as handler404  # noqa: F401
from kit.errors import json_500 as handler500  # noqa: F401
from kit.health import database_check, service_routes
from ml_svc import peers, views


def storage_ready() -> None:
    peers.storage().ready()


urlpatterns = [
    *service_routes("ml_svc", {"queue_database": database_check(), "storage_svc": storage_ready},
                    metrics=views.queue_metrics),
    path("compare", views.compare),
    path("canonicalize", views.canonicalize),
    path("explain", views.explain),
    path("overlays", views.overlays),
    path("models/<id:version_id>/errors", views.model_errors),
    path("architectures", views.architectures),
    path("models/<id:version_id>/onnx", views.model_onnx),
    path("jobs/train", views.start_training),
    path("jobs/collect", views.start_collect),
    path("jobs/fine-tune", views.start_fine_tune),
    path("jobs/evaluate", views.start_evaluation),
    path("jobs/infer", views.start_infer),
    path("jobs/sweep", views.start_sweep),
    path("sweeps/<id:run_id>", views.sweep_detail),
]
