from __future__ import annotations

from django.urls import path

from webapp.api import pages

urlpatterns = [
    path("tokens/", pages.token_list, name="token-list"),
    path("tokens/<int:pk>/revoke/", pages.token_revoke, name="token-revoke"),
]
