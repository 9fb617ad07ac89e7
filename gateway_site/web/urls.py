from django.contrib.auth import views as auth_views
from django.urls import path

from web import views

urlpatterns = [
    path("login", auth_views.LoginView.as_view(template_name="web/login.html", redirect_authenticated_user=True), name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.recognize, name="recognize"),
    path("recognize", views.recognize_submit, name="recognize-submit"),
    path("history", views.history, name="history"),
    path("runs", views.runs, name="runs"),
    path("runs/<int:run_id>/row", views.run_row, name="run-row"),
]
