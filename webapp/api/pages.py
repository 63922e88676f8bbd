"""The API tokens page (``/settings/tokens/``): make a token (its secret shown once, on
the answer to the POST, never stored), list the user's tokens, revoke one. Forms post
with CSRF like every page."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from webapp.api import services
from webapp.api.forms import TokenForm


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"form": TokenForm()}
    status = 200
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                token, secret = services.create_token(request.user, form.cleaned_data["name"])
            except ValueError as exc:
                form.add_error("name", str(exc))
            else:
                context.update(created=token, secret=secret)
        if form.errors:
            context["form"] = form
            status = 400
    context["tokens"] = services.tokens_for_user(request.user)
    response = render(request, "api/tokens.html", context, status=status)
    # The secret is on this page once: no cache may keep a copy.
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of the user's tokens; another user's (or a missing one) is left alone
    and the answer is the same, so ids reveal nothing."""
    services.revoke_token(request.user, pk)
    return redirect("token-list")
