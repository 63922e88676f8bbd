"""Production settings: check --deploy, static files with DEBUG off, CSP, error pages."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path, reverse

from tests.factories import PASSWORD, make_experiment

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "docker" / ".env.example"


def documented_environment(tmp_path: Path) -> dict[str, str]:
    """docker/.env.example as compose would pass it, with a real secret key."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["STRATLAB_DATA_DIR"] = str(tmp_path / "data")
    env["STRATLAB_MODEL_CACHE"] = str(tmp_path / "data" / "models")
    env["STATIC_ROOT"] = str(tmp_path / "static")
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_it_passes_check_deploy_with_the_documented_environment(tmp_path: Path) -> None:
    env = documented_environment(tmp_path)
    assert env["DEBUG"] == "false"
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_it_refuses_the_placeholder_secret_key(tmp_path: Path) -> None:
    env = documented_environment(tmp_path)
    env["SECRET_KEY"] = "change-me-to-a-long-random-string"
    result = manage(env, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is still the placeholder" in result.stderr


def test_it_reads_the_proxy_header_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp.settings import env_proxy_ssl_header

    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto")
    assert env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER") == ("HTTP_X_FORWARDED_PROTO", "https")
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https")
    with pytest.raises(ImproperlyConfigured, match="header name"):
        env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
    monkeypatch.delenv("SECURE_PROXY_SSL_HEADER")
    assert env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER") is None


# --- Pages and their static files with DEBUG off, as gunicorn serves them --------

MANIFEST_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "webapp.storage.StaticFilesStorage"},
}
ASSET = re.compile(r'(?:src|href)="(/static/[^"]+)"')


@pytest.fixture
def production_static(tmp_path: Path):  # type: ignore[no-untyped-def]
    """collectstatic into a temporary STATIC_ROOT, then serve from it (no finders)."""
    with override_settings(DEBUG=False, STATIC_ROOT=tmp_path / "static",
                           STORAGES=MANIFEST_STORAGES, WHITENOISE_USE_FINDERS=False,
                           WHITENOISE_AUTOREFRESH=False):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield tmp_path / "static"


@pytest.mark.django_db
def test_it_serves_pages_and_static_files_with_debug_off(production_static, team, owner) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    assert client.login(username=owner.username, password=PASSWORD)
    experiment = make_experiment(team)
    assets: set[str] = set()
    for url in (reverse("login"), reverse("experiment-new"),
                reverse("experiment-detail", args=[experiment.pk])):
        page = client.get(url)
        assert page.status_code == 200, url
        assets |= set(ASSET.findall(page.content.decode()))

    names = {re.sub(r"\.[0-9a-f]{12}\.", ".", a.rsplit("/", 1)[-1]) for a in assets}
    assert {"app.css", "htmx.min.js", "chart.umd.min.js", "charts.js"} <= names, assets
    for asset in assets:
        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", asset), f"not a hashed name: {asset}"
        response = Client().get(asset, HTTP_ACCEPT_ENCODING="gzip")
        assert response.status_code == 200, asset
        assert response["Content-Encoding"] == "gzip", asset
        assert "immutable" in response["Cache-Control"], asset
        assert b"".join(response.streaming_content), asset


# --- Content-Security-Policy ------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
INLINE_CODE = re.compile(r"<style|\sstyle=|\son[a-z]+=|javascript:", re.I)


@pytest.mark.django_db
def test_it_allows_only_our_own_scripts_and_styles(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    experiment = make_experiment(team)
    problem = experiment.dataset.problems.first()
    pages = [reverse("login")]
    client.login(username=owner.username, password=PASSWORD)
    pages += [reverse("experiment-list"), reverse("experiment-new"),
              reverse("experiment-detail", args=[experiment.pk]),
              reverse("experiment-problem", args=[experiment.pk, problem.pk])]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "style-src 'self';" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        html = response.content.decode()
        assert not INLINE_SCRIPT.search(html), url
        assert not INLINE_CODE.search(html), (url, INLINE_CODE.search(html))
        # htmx would otherwise inject a <style> element the policy blocks.
        assert '"includeIndicatorStyles": false' in html, url


# --- 404 and 500 pages ------------------------------------------------------------


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret detail that must not reach the page")


urlpatterns = [path("boom/", boom)]
handler500 = "webapp.errors.server_error"


@pytest.mark.django_db
def test_it_shows_its_own_404_page(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"Not found" in response.content
    assert b"StratLab" in response.content


@override_settings(ROOT_URLCONF=__name__)
def test_it_shows_its_own_500_page_without_details() -> None:
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert b"Server error" in response.content
    assert b"secret detail" not in response.content
    assert b"Traceback" not in response.content
