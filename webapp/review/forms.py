"""Forms of team review: a comment, a label with its reason, a revert with its reason.

The templates write their inputs by hand (every candidate has its own forms, so ids
carry the candidate's id); these forms only validate. Length limits and the rules live
in ``webapp.review.services``, which the views call with the cleaned values.
"""

from __future__ import annotations

from django import forms

from webapp.review.models import HumanLabel
from webapp.review.services import AUTOMATIC, MAX_ANSWER, MAX_COMMENT, MAX_REASON

EXPECTED = {AUTOMATIC, *HumanLabel.Outcome.values}


class CommentForm(forms.Form):
    body = forms.CharField(max_length=MAX_COMMENT, strip=True,
                           error_messages={"required": "Write something first."})


class _Expected(forms.Form):
    """``expected``: the label outcome the page showed ("" for the automatic verdict);
    absent (None) when the client does not say, and then nothing is compared."""

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        value = self.data.get("expected")
        if value is not None and value not in EXPECTED:
            raise forms.ValidationError("The page sent an unknown label; reload it.")
        cleaned["expected"] = value
        return cleaned


class LabelForm(_Expected):
    outcome = forms.ChoiceField(choices=HumanLabel.Outcome.choices,
                                error_messages={"required": "Choose pass or fail."})
    answer = forms.CharField(max_length=MAX_ANSWER, required=False, strip=True)
    reason = forms.CharField(max_length=MAX_REASON, strip=True,
                             error_messages={"required": "Say why: a label needs a reason."})


class RevertForm(_Expected):
    reason = forms.CharField(max_length=MAX_REASON, strip=True,
                             error_messages={"required": "Say why: a revert needs a reason."})


def first_error(form: forms.Form) -> str:
    """The form's first error message, for the one error line a fragment shows."""
    for errors in form.errors.values():
        for error in errors:
            return str(error)
    return ""
