from django.contrib.auth import views as auth_views
from django.urls import path

import gateway_site.converters  # noqa: F401 - registers <report_kind:> and <id:>
from gateway_site.web.views import dashboard, data, models, predicting, runs

urlpatterns = [
    path("login", auth_views.LoginView.as_view(template_name="web/login.html", redirect_authenticated_user=True), name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("", predicting.recognize, name="recognize"),
    path("recognize", predicting.recognize_submit, name="recognize-submit"),
    path("model-status", predicting.model_status, name="model-status"),
    path("predictions/<id:prediction_id>/feedback", predicting.prediction_feedback, name="prediction-feedback"),
    path("predictions/<id:prediction_id>/why", predicting.prediction_why, name="prediction-why"),
    path("history", predicting.history, name="history"),
    path("datasets", data.datasets, name="datasets"),
    path("datasets/collect", data.collect, name="collect"),
    path("review", data.review, name="review"),
    path("review/<id:sample_id>", data.review_decide, name="review-decide"),
    path("dashboard", dashboard.dashboard, name="dashboard"),
    path("runs", runs.runs, name="runs"),
    path("runs/<id:run_id>", runs.run_detail, name="run-detail"),
    path("runs/<id:run_id>/cancel", runs.run_cancel, name="run-cancel"),
    path("train", runs.train, name="train"),
    path("models/compare", models.compare, name="compare"),
    path("console", models.console, name="console"),
    path("console/promote", models.console_promote, name="console-promote"),
    path("console/canary", models.console_canary, name="console-canary"),
    path("console/webhooks", models.console_webhook, name="console-webhook"),
    path("console/webhooks/delete", models.console_webhook_delete, name="console-webhook-delete"),
    path("console/role", models.console_role, name="console-role"),
    path("models", models.models, name="models"),
    path("models/<id:version_id>/report.<report_kind:kind>", models.model_report, name="model-report"),
    path("models/<id:version_id>/errors", models.model_errors, name="model-errors"),
    path("models/<id:version_id>/errors/review", models.model_errors_review, name="model-errors-review"),
    path("runs/<id:run_id>/row", runs.run_row, name="run-row"),
]
