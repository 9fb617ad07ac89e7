from django.urls import path

import kit.converters  # noqa: F401 - registers <id:>
from storage_svc.registry import views

urlpatterns = [
    path("blobs", views.blob_put),
    path("blobs/<str:sha256>", views.blob_detail),
    path("datasets", views.datasets),
    path("datasets/<id:dataset_id>", views.dataset_detail),
    path("datasets/<id:dataset_id>/data", views.dataset_data),
    path("runs", views.runs),
    path("runs/<id:run_id>", views.run_detail),
    path("models", views.model_versions),
    path("models/<id:version_id>", views.model_version_detail),
    path("models/<id:version_id>/report", views.model_report),
    path("models/<id:version_id>/evaluations", views.model_evaluations),
    path("models/<id:version_id>/shadow", views.model_shadow),
    path("models/<id:version_id>/drift", views.model_drift),
    path("drift/production", views.production_drift),
    path("events", views.event_create),
    path("webhooks", views.webhooks),
    path("webhooks/deliveries", views.deliveries),
    path("webhooks/deliveries/claim", views.deliveries_claim),
    path("webhooks/deliveries/<id:delivery_id>/result", views.delivery_result),
    path("webhooks/<id:webhook_id>", views.webhook_detail),
    path("rollout", views.rollout_state),
    path("rollout/canary", views.canary),
    path("aliases/ledger", views.alias_ledger),
    path("aliases/<str:name>", views.alias_detail),
    path("predictions", views.predictions),
    path("predictions/bulk", views.predictions_bulk),
    path("predictions/stats", views.prediction_stats),
    path("predictions/<id:prediction_id>", views.prediction_detail),
    path("predictions/<id:prediction_id>/feedback", views.prediction_feedback),
    path("samples", views.samples),
    path("samples/export", views.samples_export),
    path("samples/<id:sample_id>/review", views.sample_review),
]
