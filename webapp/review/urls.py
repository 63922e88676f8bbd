"""Mounted under ``experiments/<pk>/problems/<problem_pk>/`` (``webapp/urls.py``)."""

from __future__ import annotations

from django.urls import path

from webapp.review import views

urlpatterns = [
    path("comments/", views.comments, name="review-comments"),
    path("comments/<int:comment_pk>/edit/", views.comment_edit, name="review-comment-edit"),
    path("comments/<int:comment_pk>/delete/", views.comment_delete,
         name="review-comment-delete"),
    path("candidates/<int:sample_pk>/", views.candidate, name="review-candidate"),
    path("candidates/<int:sample_pk>/comments/", views.candidate_comment,
         name="review-candidate-comment"),
    path("candidates/<int:sample_pk>/label/", views.label, name="review-label"),
    path("candidates/<int:sample_pk>/label/revert/", views.label_revert,
         name="review-label-revert"),
]
