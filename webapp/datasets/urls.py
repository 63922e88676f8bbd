from __future__ import annotations

from django.urls import path

from webapp.datasets import views

urlpatterns = [
    path("", views.dataset_list, name="dataset-list"),
    path("upload/", views.dataset_upload, name="dataset-upload"),
    path("uploads/<int:pk>/", views.dataset_map, name="dataset-map"),
    path("uploads/<int:pk>/discard/", views.upload_discard, name="dataset-upload-discard"),
    path("<int:pk>/", views.dataset_detail, name="dataset-detail"),
    path("<int:pk>/download/", views.dataset_download, name="dataset-download"),
    path("<int:pk>/rename/", views.dataset_rename, name="dataset-rename"),
    path("<int:pk>/delete/", views.dataset_delete, name="dataset-delete"),
]
