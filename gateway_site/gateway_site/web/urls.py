from django.contrib.auth import views as auth_views
from django.urls import path

import gateway_site.converters  # noqa: F401 - registers <report_kind:> and <id:>
from gateway_site.web import views

urlpatterns = [
    path("login", auth_views.LoginView.as_view(template_name="web/login.html", redirect_authenticated_user=True), name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.recognize, name="recognize"),
    path("recognize", views.recognize_submit, name="recognize-submit"),
    path("model-status", views.model_status, name="model-status"),
    path("predictions/<id:prediction_id>/feedback", views.prediction_feedback, name="prediction-feedback"),
    path("history", views.history, name="history"),
    path("datasets", views.datasets, name="datasets"),
    path("datasets/collect", views.collect, name="collect"),
    path("review", views.review, name="review"),
    path("review/<id:sample_id>", views.review_decide, name="review-decide"),
    path("dashboard", views.dashboard, name="dashboard"),
    path("runs", views.runs, name="runs"),
    path("runs/<id:run_id>", views.run_detail, name="run-detail"),
    path("runs/<id:run_id>/cancel", views.run_cancel, name="run-cancel"),
    path("train", views.train, name="train"),
    path("models/compare", views.compare, name="compare"),
    path("console", views.console, name="console"),
    path("models", views.models, name="models"),
    path("models/<id:version_id>/report.<report_kind:kind>", views.model_report, name="model-report"),
    path("runs/<id:run_id>/row", views.run_row, name="run-row"),
]
