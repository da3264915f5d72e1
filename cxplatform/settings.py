"""Settings, read from the environment (see .env.example) with safe local defaults.

With no DATABASE_URL the product runs on a SQLite file; with no REDIS_URL tasks run
in-process, the channel layer and cache live in memory. Production differs only by values.
"""

from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured
from rest_framework import fields, serializers

# Lets annotations such as ModelForm[Tenant] and ModelSerializer[Tenant] work at run time.
django_stubs_ext.monkeypatch(extra_classes=[serializers.BaseSerializer, fields.Field])

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-local-only-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "tenants",
    "journeys",
    "personalization",
    "chatbot",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenants.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "tenants.middleware.TenantMiddleware",
]

ROOT_URLCONF = "cxplatform.urls"
WSGI_APPLICATION = "cxplatform.wsgi.application"
ASGI_APPLICATION = "cxplatform.asgi.application"
# Threads per ASGI server process that run requests' Django code (cxplatform/asgi.py). Few is faster:
# measured on 2 cores, 2 threads served the jobs API at 690 req/s, 4 threads at 378 (GIL contention).
# One (a request at a time per process, as a sync WSGI worker; scale with processes) kept the tail
# shortest: jobs API p99 48-57 ms against 98 ms with 2, at the same 880-910 req/s.
ASGI_THREADS = env.int("ASGI_THREADS", default=1)

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
                "tenants.context_processors.tenancy",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
else:
    # Our backend writes the current tenant into the connection for row-level security.
    DATABASES["default"]["ENGINE"] = "tenants.db.postgresql"
    if env.bool("DB_POOL", default=False):
        # A psycopg pool per process. The ASGI handler (cxplatform/asgi.py) runs requests on a few
        # long-lived threads, whose persistent connections measured faster, so it is optional.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DB_POOL_MAX_SIZE", default=8),
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, cache, channel layer ---------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "cxplatform.cache.RedisCache", "LOCATION": REDIS_URL}}  # reuses its clients
    # redis-py 8 times socket reads out after 5 s, exactly channels_redis's blocking-receive period: without a
    # longer timeout idle sockets die with "Timeout reading from" after a few seconds.
    # Each process's pool raises (not waits) past max_connections; sockets joining groups in bursts need room.
    _LAYER_MAX = env.int("REDIS_LAYER_MAX_CONNECTIONS", default=1000)
    _LAYER = {"hosts": [{"address": REDIS_URL, "socket_timeout": 30, "max_connections": _LAYER_MAX}], "capacity": 1000}
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "cxplatform.channel_layer.BatchReadingRedisChannelLayer", "CONFIG": _LAYER}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# No broker: jobs run in-process on a small thread pool, so the embedded default needs no services.
# CX_TASKS_INLINE runs them synchronously instead (tests).
CX_TASKS_INLINE = env.bool("CX_TASKS_INLINE", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# --- Auth and accounts (django-allauth) -------------------------------------------------
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_SIGNUP_FORM_CLASS = "tenants.forms.BusinessSignupForm"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": env.str("LOGIN_FAILED_RATE_LIMIT", default="5/5m/ip,5/5m/key"),
    "login": "30/m/ip",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "CX Platform"
INVITATION_TTL = timedelta(days=env.int("INVITATION_TTL_DAYS", default=7))

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
# Where django.core.mail.backends.filebased.EmailBackend writes each message as a file (staging, tests).
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="CX Platform <no-reply@cx.localhost>")

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.api.authentication.ApiKeyAuthentication",
        "tenants.api.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.api.permissions.TenantPermission"],
    "DEFAULT_THROTTLE_CLASSES": ["tenants.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_THROTTLE_RATE", default="600/min")},
    "DEFAULT_PAGINATION_CLASS": "tenants.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "tenants.api.filters.FilterBackend",  # django-filter, skipped when nothing is filtered
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tenants.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["tenants.api.renderers.JSONRenderer"],  # DRF's output, written by orjson
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CX Platform API",
    "DESCRIPTION": "Tenant-scoped REST API. Authenticate with `Authorization: Bearer <API key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Both consent fields share one choice set; name it once.
    "ENUM_NAME_OVERRIDES": {"ConsentSourceEnum": "journeys.models.ConsentSource"},
}
# Largest request body accepted per path prefix (bytes); anything larger gets 413.
REQUEST_MAX_BYTES = env.int("REQUEST_MAX_BYTES", default=10 * 1024 * 1024)
REQUEST_MAX_BYTES_BY_PREFIX = {"/api/v1/imports/": 200 * 1024 * 1024, "/imports/": 200 * 1024 * 1024}
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- i18n, static, media ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str("STATICFILES_STORAGE", default="whitenoise.storage.CompressedManifestStaticFilesStorage")
    },
}
if DEBUG:
    STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
WHITENOISE_USE_FINDERS = DEBUG

# --- Security (production values come from the environment) ---------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
SPECTACULAR_SETTINGS.update(
    {"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR"}
)
INSTALLED_APPS.append("drf_spectacular_sidecar")

# --- Chat bot knowledge base and webhooks (chatbot/knowledge.py, tenants/webhooks.py) ------------------
# Sentence embeddings for the bot (needs the `embeddings` extra); off = lexical matching only.
CX_BOT_EMBEDDINGS = env.bool("CX_BOT_EMBEDDINGS", default=True)
# Embedding model: a hub name or local path; empty = the packaged all-MiniLM-L6-v2 weights.
CX_BOT_MODEL = env.str("CX_BOT_MODEL", default="")
# Run the embedding model's Linear layers int8, each token quantized on its own so a message's vector does not
# depend on its batch: true, false, or auto (int8 where the CPU has AVX-512 VNNI: about 1.2 ms CPU a message in
# batches instead of 3.7; without VNNI the same int8 vectors cost more than the float model's, so auto runs the
# float model there; CLINC150 quality is the same either way: bench/bench_embed_cost.py). Indexes record the
# variant: the next rebuild after a change re-embeds them (until then they answer with the other variant's
# vectors, about 0.997 cosine to them).
CX_BOT_MODEL_QUANTIZE = env.str("CX_BOT_MODEL_QUANTIZE", default="auto").strip().lower()
if CX_BOT_MODEL_QUANTIZE in environ.Env.BOOLEAN_TRUE_STRINGS:  # the booleans env.bool took before auto existed
    CX_BOT_MODEL_QUANTIZE = "true"
elif CX_BOT_MODEL_QUANTIZE in ("false", "off", "no", "n", "0"):
    CX_BOT_MODEL_QUANTIZE = "false"
elif CX_BOT_MODEL_QUANTIZE != "auto":
    raise ImproperlyConfigured(f"CX_BOT_MODEL_QUANTIZE must be auto, true or false, not {CX_BOT_MODEL_QUANTIZE!r}")
# What runs the float model's forward pass: auto (ONNX Runtime where installed, as the `embeddings` extra does;
# torch otherwise), onnx or torch. Same vectors either way; ONNX Runtime costs about 40% of torch's CPU for a lone
# message and a third less in batches on an AVX2 server (bench/bench_embed_cost.py). The int8 model is torch's.
CX_BOT_MODEL_RUNTIME = env.str("CX_BOT_MODEL_RUNTIME", default="auto").strip().lower()
if CX_BOT_MODEL_RUNTIME not in ("auto", "onnx", "torch"):
    raise ImproperlyConfigured(f"CX_BOT_MODEL_RUNTIME must be auto, onnx or torch, not {CX_BOT_MODEL_RUNTIME!r}")
# Directory for the model exported to ONNX (once, at the first start; about 90 MB); empty = ~/.cache/cxplatform,
# or the system's temporary directory when that is not writable.
CX_BOT_MODEL_CACHE = env.str("CX_BOT_MODEL_CACHE", default="")
# Intra-op threads for the embedding model in this process, torch's or ONNX Runtime's (0 = torch's default; 1
# for ONNX Runtime).
CX_BOT_TORCH_THREADS = env.int("CX_BOT_TORCH_THREADS", default=0) or None
# Concurrent bot replies of a process share embedding-model calls, the first waiting this long (ms; 0 = off).
CX_BOT_BATCH_MS = env.float("CX_BOT_BATCH_MS", default=0.0)
# Where the bot's replies are computed (chatbot/replies.py): inline (in the visitor's request), thread (a
# batching thread per web process) or worker (`manage.py chat_bot_worker`); empty = thread with Redis, else inline.
CX_BOT_REPLIES = env.str("CX_BOT_REPLIES", default="")
# Task modules outside `<app>/tasks.py` that the worker must import.
CELERY_IMPORTS = ["chatbot.knowledge", "tenants.webhooks"]
# Webhook delivery: request timeout (s), attempts before giving up, first retry delay (s, doubles).
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
# An agent's reply emailed to a visitor (chatbot.tasks): first retry after a refusal, in seconds; doubles on each
# of 7 retries (about two hours in all with the default).
CX_REPLY_EMAIL_RETRY_SECONDS = env.int("CX_REPLY_EMAIL_RETRY_SECONDS", default=60)

# --- Chat widget (public endpoints) ----------------------------------------------------------
WIDGET_RATE_PER_VISITOR = env.str("WIDGET_RATE_PER_VISITOR", default="60/min")
WIDGET_RATE_PER_IP = env.str("WIDGET_RATE_PER_IP", default="600/min")
WIDGET_MESSAGE_MAX_CHARS = env.int("WIDGET_MESSAGE_MAX_CHARS", default=2000)
DEMO_TENANT_SLUG = env.str("DEMO_TENANT_SLUG", default="demo")  # whose widget the demo storefront embeds
