"""StratLab settings: one file, read from the environment with strict helpers.

Defaults run locally with nothing else installed: SQLite under ``var/`` and an
embedded Redis started by ``manage.py up``. Deployments set ``DATABASE_URL``,
``REDIS_URL``, ``SECRET_KEY``, ``DEBUG`` and ``ALLOWED_HOSTS``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# NumPy/SciPy's OpenBLAS spins its own threads; beside torch's (MKL) threads on a
# small machine that turns a 2 ms optimiser call (RPC's mixture fit) into 300 ms.
# Set before anything imports numpy; torch's thread pool is unaffected.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_json_dict(name: str) -> dict[str, str]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON object: {exc}") from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ImproperlyConfigured(f"{name} must map model names to directory paths")
    return value


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """A header name such as ``X-Forwarded-Proto`` that the proxy sets to ``https``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not all(c.isalnum() or c == "-" for c in raw):
        raise ImproperlyConfigured(
            f"{name} must be a header name such as X-Forwarded-Proto, got {raw!r}"
        )
    return ("HTTP_" + raw.upper().replace("-", "_"), "https")


DATA_DIR = Path(env_str("STRATLAB_DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-local-development-key-set-SECRET_KEY-in-production"
if not DEBUG and SECRET_KEY.startswith("change-me"):
    # docker/.env.example's placeholder: refuse it rather than sign sessions with it.
    raise ImproperlyConfigured(
        "SECRET_KEY is still the placeholder from docker/.env.example; generate one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "webapp.teams",
    "webapp.datasets",
    "webapp.experiments",
    "webapp.review",
    "webapp.api",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files, served from static/ like ours (the CSP allows no CDN).
    "drf_spectacular_sidecar",
    # The workers package as an app only for its management commands (verify_samples).
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files before anything that reads the session or the database.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "webapp.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "webapp.middleware.DatabaseBusyMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

_default_db = f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(env_str("DATABASE_URL", _default_db), conn_max_age=0)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The web server and the worker write concurrently: WAL lets readers proceed,
    # IMMEDIATE transactions take the write lock up front instead of failing midway, and
    # a writer waits up to the busy timeout for the lock (then a page answers 503,
    # webapp.errors). Below gunicorn's 30 s worker timeout, so the 503 comes first.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_int("STRATLAB_SQLITE_TIMEOUT", 20),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests that start a real worker need a database file the worker can open.
    DATABASES["default"]["TEST"] = {
        "NAME": env_str("STRATLAB_TEST_DB", str(DATA_DIR / "test-db.sqlite3"))
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "experiment-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# The web process serves its own static files (WhiteNoise). With DEBUG off they come
# from STATIC_ROOT, filled by `collectstatic` (the Docker build and `manage.py up` run
# it): hashed names, gzip copies, cached for a year. With DEBUG on they come straight
# from static/ and the apps, re-read on every request, so no collectstatic is needed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "webapp.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- HTTPS. Off by default so a local `manage.py up` works over http://127.0.0.1;
# docker/.env.example turns them on for a host behind a TLS-terminating proxy, and
# `manage.py check --deploy --fail-level WARNING` then passes (tests/webapp/test_deploy.py).
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured("SECURE_HSTS_SECONDS must be 0 (off) or a positive integer")
# Only behind a proxy that sets this header itself (and strips it from clients).
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
# Our own scripts and styles only (htmx and Chart.js are vendored; no inline code).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

# --- JSON API (webapp/api): personal tokens for scripts, the session for the browser
# (with its CSRF check); every list is paged. Errors are JSON, the schema OpenAPI 3.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "webapp.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "webapp.api.pagination.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # ``?format=csv`` names an export's format, not a renderer.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "StratLab API",
    "DESCRIPTION": "Run and compare LLM generation strategies from scripts: submit an "
    "experiment spec, poll its progress, read its metrics, results and samples.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery: Redis broker; results live in the database, never in a result backend.
# Without REDIS_URL, ``manage.py up`` starts an embedded Redis on this loopback port.
REDIS_URL = env_str("REDIS_URL", "")
EMBEDDED_REDIS_PORT = env_int("STRATLAB_REDIS_PORT", 6390)
CELERY_BROKER_URL = REDIS_URL or f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ROUTES = {
    "workers.tasks.generate_chunk": {"queue": "gpu"},
    "workers.tasks.verify_chunk": {"queue": "cpu"},
    "workers.tasks.compute_metrics": {"queue": "cpu"},
    "workers.tasks.compute_labelled_metrics": {"queue": "cpu"},
}
# Time limits stay below the Redis visibility timeout so a task is never
# redelivered while it is still running.
CELERY_TASK_TIME_LIMIT = env_int("STRATLAB_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Recovery (webapp/experiments/recovery.py). A task beats its chunk's row every
# STRATLAB_HEARTBEAT_SECONDS and stops between batches and programs once past the soft
# time limit; `manage.py reconcile` sweeps every STRATLAB_RECONCILE_SECONDS and re-sends
# the missing work of a chunk silent for STRATLAB_STALE_SECONDS; after
# STRATLAB_MAX_ATTEMPTS deliveries of one chunk that died or failed, the experiment fails.
STRATLAB_MAX_ATTEMPTS = env_int("STRATLAB_MAX_ATTEMPTS", 3)
STRATLAB_HEARTBEAT_SECONDS = env_int("STRATLAB_HEARTBEAT_SECONDS", 10)
STRATLAB_STALE_SECONDS = env_int("STRATLAB_STALE_SECONDS", 45)
STRATLAB_RECONCILE_SECONDS = env_int("STRATLAB_RECONCILE_SECONDS", 10)
if STRATLAB_MAX_ATTEMPTS < 1 or STRATLAB_HEARTBEAT_SECONDS < 1 or STRATLAB_RECONCILE_SECONDS < 1:
    raise ImproperlyConfigured(
        "STRATLAB_MAX_ATTEMPTS, STRATLAB_HEARTBEAT_SECONDS and STRATLAB_RECONCILE_SECONDS "
        "must be positive integers"
    )
if STRATLAB_STALE_SECONDS < 2 * STRATLAB_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "STRATLAB_STALE_SECONDS must be at least twice STRATLAB_HEARTBEAT_SECONDS, or a "
        "live task that missed one beat would look dead"
    )

# --- Runtime
STRATLAB_MODEL_CACHE = Path(env_str("STRATLAB_MODEL_CACHE", str(DATA_DIR / "models")))
STRATLAB_EXTRA_MODELS = env_json_dict("STRATLAB_EXTRA_MODELS")
STRATLAB_DEFAULT_MODEL = env_str("STRATLAB_DEFAULT_MODEL", "smollm2-135m-instruct")
# Problems per generation task: a killed worker loses at most one chunk.
STRATLAB_CHUNK_SIZE = env_int("STRATLAB_CHUNK_SIZE", 4)
# Samples of one (pool, problem) one generation task decodes at most: a sampled pool with
# a larger N is generated in ranges of this many sample indices, each its own task.
STRATLAB_CHUNK_SAMPLES = env_int("STRATLAB_CHUNK_SAMPLES", 1024)
if STRATLAB_CHUNK_SAMPLES < 1:
    raise ImproperlyConfigured("STRATLAB_CHUNK_SAMPLES must be a positive integer")
# Texts per pool the diversity step embeds at most (MiniLM): a seeded subset of the
# problems, each with its text subsample (up to 32). On two CPU cores MiniLM embeds about
# 46 texts/s, so the default keeps the step near half a minute for three pools; where the
# metrics worker has a GPU, 48,000 texts take about 13 s and the cap can be far higher.
STRATLAB_EMBED_TEXTS = env_int("STRATLAB_EMBED_TEXTS", 512)
if STRATLAB_EMBED_TEXTS < 2:
    raise ImproperlyConfigured("STRATLAB_EMBED_TEXTS must be at least 2")
# Rows the engine decodes in one batch (the samples of several problems and pools of a
# chunk share batches); it halves on out-of-memory.
STRATLAB_MAX_BATCH_ROWS = env_int("STRATLAB_MAX_BATCH_ROWS", 128)
# Draft tokens per step for a greedy prompt that decodes alone (prompt lookup, or a
# draft model below; the output is the model's greedy output); 0, the default, turns it
# off: on a CPU a verify pass costs about 1.5 plain steps and drafting barely pays.
STRATLAB_SPECULATIVE_TOKENS = env_int("STRATLAB_SPECULATIVE_TOKENS", 0)
# Draft models for speculative greedy decoding, {"target model": "draft model"}: the
# draft must share the target's tokenizer (e.g. a small local model of the same family).
STRATLAB_DRAFT_MODELS = env_json_dict("STRATLAB_DRAFT_MODELS")

# --- Uploaded datasets: the byte cap is enforced while the request body streams in
# (webapp/datasets/uploads.CappedUploadHandler); the row cap as soon as it is passed.
STRATLAB_DATASET_MAX_BYTES = env_int("STRATLAB_DATASET_MAX_BYTES", 200 * 1024 * 1024)
STRATLAB_DATASET_MAX_ROWS = env_int("STRATLAB_DATASET_MAX_ROWS", 1_000_000)
if STRATLAB_DATASET_MAX_BYTES < 1 or STRATLAB_DATASET_MAX_ROWS < 1:
    raise ImproperlyConfigured(
        "STRATLAB_DATASET_MAX_BYTES and STRATLAB_DATASET_MAX_ROWS must be positive integers"
    )

# --- Code sandbox (workers/sandbox): runners per cpu worker process; without
# namespace isolation (see README) code is refused unless the operator opts in here.
STRATLAB_SANDBOX_WORKERS = env_int("STRATLAB_SANDBOX_WORKERS", 2)
STRATLAB_SANDBOX_ALLOW_UNISOLATED = env_bool("STRATLAB_SANDBOX_ALLOW_UNISOLATED", False)
# Mounted empty inside the sandbox: the data directory (database, secrets, model cache).
STRATLAB_SANDBOX_HIDDEN_PATHS = [str(DATA_DIR)]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
