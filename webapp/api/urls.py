"""The JSON API, mounted at ``/api/v1/``; its schema at ``schema/`` and Swagger UI at
``docs/`` (Swagger UI's files come from drf-spectacular-sidecar, served as our own
static files, and its start-up script is a separate file: the CSP allows no inline
script and no CDN)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from webapp.api import experiments, views

urlpatterns = [
    path("models/", views.model_list, name="api-models"),
    path("catalogue/", views.strategy_catalogue, name="api-catalogue"),
    path("teams/", views.team_list, name="api-teams"),
    path("datasets/", views.dataset_list, name="api-datasets"),
    path("datasets/<int:pk>/", views.dataset_detail, name="api-dataset"),
    path("datasets/<int:pk>/problems/", views.dataset_problems, name="api-dataset-problems"),
    path("experiments/", experiments.experiment_list, name="api-experiments"),
    path("experiments/<int:pk>/", experiments.experiment_detail, name="api-experiment"),
    path("experiments/<int:pk>/cancel/", experiments.experiment_cancel,
         name="api-experiment-cancel"),
    path("experiments/<int:pk>/amend/", experiments.experiment_amend,
         name="api-experiment-amend"),
    path("experiments/<int:pk>/export/", experiments.experiment_export,
         name="api-experiment-export"),
    path("experiments/<int:pk>/metrics/", experiments.experiment_metrics,
         name="api-experiment-metrics"),
    path("experiments/<int:pk>/results/", experiments.experiment_results,
         name="api-experiment-results"),
    path("experiments/<int:pk>/samples/", experiments.experiment_samples_view,
         name="api-experiment-samples"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(
        url_name="api-schema", template_name="api/swagger-ui.html"), name="api-docs"),
]
