from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="experiment-list", permanent=False)),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("experiments/", include("webapp.experiments.urls")),
    path("experiments/<int:pk>/problems/<int:problem_pk>/", include("webapp.review.urls")),
    path("datasets/", include("webapp.datasets.urls")),
    path("teams/", include("webapp.teams.urls")),
    path("settings/", include("webapp.api.settings_urls")),
    path("api/v1/", include("webapp.api.urls")),
    path("admin/", admin.site.urls),
]

# A busy database answers 503 "try again" (webapp.errors); anything else the 500 page.
handler500 = "webapp.errors.server_error"
