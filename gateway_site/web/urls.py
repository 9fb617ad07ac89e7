from django.contrib.auth import views as auth_views
from django.urls import path

import gateway_site.converters  # noqa: F401 - registers <report_kind:>
from web import views

urlpatterns = [
    path("login", auth_views.LoginView.as_view(template_name="web/login.html", redirect_authenticated_user=True), name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.recognize, name="recognize"),
    path("recognize", views.recognize_submit, name="recognize-submit"),
    path("model-status", views.model_status, name="model-status"),
    path("predictions/<int:prediction_id>/feedback", views.prediction_feedback, name="prediction-feedback"),
    path("history", views.history, name="history"),
    path("datasets", views.datasets, name="datasets"),
    path("datasets/collect", views.collect, name="collect"),
    path("review", views.review, name="review"),
    path("review/<int:sample_id>", views.review_decide, name="review-decide"),
    path("dashboard", views.dashboard, name="dashboard"),
    path("runs", views.runs, name="runs"),
    path("runs/<int:run_id>", views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/cancel", views.run_cancel, name="run-cancel"),
    path("train", views.train, name="train"),
    path("models/compare", views.compare, name="compare"),
    path("console", views.console, name="console"),
    path("models", views.models, name="models"),
    path("models/<int:version_id>/report.<report_kind:kind>", views.model_report, name="model-report"),
    path("runs/<int:run_id>/row", views.run_row, name="run-row"),
]
