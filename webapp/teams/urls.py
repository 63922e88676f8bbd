from __future__ import annotations

from django.urls import path

from webapp.teams import views

urlpatterns = [
    path("", views.team_list, name="team-list"),
    path("<slug:slug>/", views.team_detail, name="team-detail"),
    path("<slug:slug>/members/add/", views.member_add, name="team-member-add"),
    path("<slug:slug>/members/<int:membership_id>/role/", views.member_role,
         name="team-member-role"),
    path("<slug:slug>/members/<int:membership_id>/remove/", views.member_remove,
         name="team-member-remove"),
]
