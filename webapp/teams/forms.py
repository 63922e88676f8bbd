"""Forms of the team page: add a member by username, change a member's role."""

from __future__ import annotations

from django import forms

from webapp.teams.models import Membership
from webapp.teams.services import ASSIGNABLE_ROLES

ROLE_CHOICES = [(str(role), role.label) for role in ASSIGNABLE_ROLES]


class AddMemberForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username",
                               widget=forms.TextInput(attrs={"autocomplete": "off"}))
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Membership.Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)
