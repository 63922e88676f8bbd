"""The API tokens page's form: a new token's name."""

from __future__ import annotations

from django import forms

from webapp.api.services import MAX_NAME_LENGTH


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=MAX_NAME_LENGTH, label="Name",
        help_text="What uses it, e.g. the laptop or the CI job; shown in the list below.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
