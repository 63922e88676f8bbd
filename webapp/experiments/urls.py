from __future__ import annotations

from django.urls import path

from webapp.experiments import lifecycle_views, views

urlpatterns = [
    path("", views.experiment_list, name="experiment-list"),
    path("new/", views.experiment_new, name="experiment-new"),
    path("new/strategy-row/", views.strategy_row, name="experiment-strategy-row"),
    path(
        "new/strategy-row/remove/",
        views.strategy_row_remove,
        name="experiment-strategy-row-remove",
    ),
    path("new/verifier-fields/", views.verifier_fields, name="experiment-verifier-fields"),
    path("compare/", views.experiment_compare, name="experiment-compare"),
    path("<int:pk>/", views.experiment_detail, name="experiment-detail"),
    path("<int:pk>/cancel/", lifecycle_views.experiment_cancel, name="experiment-cancel"),
    path("<int:pk>/delete/", lifecycle_views.experiment_delete, name="experiment-delete"),
    path("<int:pk>/amend/", lifecycle_views.experiment_amend, name="experiment-amend"),
    path("<int:pk>/export/", views.experiment_export, name="experiment-export"),
    path(
        "<int:pk>/problems/<int:problem_pk>/", views.problem_detail, name="experiment-problem"
    ),
]
