from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

import gateway_site.converters  # noqa: F401 - registers <report_kind:> and <id:>
from gateway_site.api import views

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema", permission_classes=[AllowAny]), name="docs"),
    path("auth/token", views.token_create),
    path("health", views.health),
    path("predictions", views.predictions),
    path("predictions/batch", views.predictions_batch),
    path("predictions/<id:prediction_id>/feedback", views.prediction_feedback),
    path("samples", views.samples),
    path("samples/<id:sample_id>/review", views.sample_review),
    path("sources", views.sources),
    path("collector/log", views.collector_log),
    path("scenarios/collect-and-store", views.collect_and_store),
    path("scenarios/train-model", views.train_model),
    path("scenarios/fine-tune", views.fine_tune),
    path("scenarios/evaluate", views.evaluate),
    path("scenarios/infer", views.infer),
    path("scenarios/sweep", views.sweep),
    path("architectures", views.architectures),
    path("runs", views.runs),
    path("runs/<id:run_id>", views.run_detail),
    path("runs/<id:run_id>/cancel", views.run_cancel),
    path("runs/<id:run_id>/events", views.run_events),
    path("runs/<id:run_id>/results.csv", views.run_results),
    path("runs/<id:run_id>/sweep", views.sweep_detail),
    path("datasets", views.datasets),
    path("datasets/upload", views.dataset_upload),
    path("datasets/<id:dataset_id>", views.dataset_detail),
    path("datasets/<id:dataset_id>/download", views.dataset_download),
    path("models", views.models),
    path("models/ledger", views.alias_ledger),
    path("models/<id:version_id>", views.model_detail),
    path("models/<id:version_id>/promote", views.model_promote),
    path("models/<id:version_id>/download", views.model_download),
    path("models/<id:version_id>/card", views.model_card),
    path("models/<id:version_id>/evaluations", views.model_evaluations),
    path("models/<id:version_id>/compare", views.model_compare),
    path("models/<id:version_id>/report.<report_kind:kind>", views.model_report),
]
