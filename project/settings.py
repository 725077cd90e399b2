"""Settings of the example project.

Everything that differs between the demo, tests and production comes from
environment variables, so real AWS and real third-party accounts need no
code change. With none set, the project runs on SQLite with the console
transport for every integration.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-key-for-the-demo-only")
DEBUG = env_flag("DJANGO_DEBUG", True)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "outbox",
    "integrations",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Relay, consumers and the web server write from several threads in the
    # demo. IMMEDIATE transactions take the write lock up front, so SQLite
    # waits for it instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    # A file, not memory, so relays and consumers started as processes by the
    # tests see the test database.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("SQLITE_TEST_NAME", str(BASE_DIR / "var" / "test.sqlite3"))
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
MEDIA_ROOT = BASE_DIR / "var" / "media"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:welcome"
LOGOUT_REDIRECT_URL = "accounts:login"

# Claim-check payloads: S3 when OUTBOX_S3_BUCKET is set, else local files.
if os.environ.get("OUTBOX_S3_BUCKET"):
    PAYLOAD_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["OUTBOX_S3_BUCKET"],
            "endpoint_url": os.environ.get("OUTBOX_AWS_ENDPOINT_URL") or None,
            "file_overwrite": True,
        },
    }
else:
    PAYLOAD_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(BASE_DIR / "var" / "payloads")},
    }

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "outbox_payloads": PAYLOAD_STORAGE,
    # Where `purge_outbox --archive` writes JSON Lines before deleting.
    "outbox_archive": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["OUTBOX_ARCHIVE_BUCKET"],
            "endpoint_url": os.environ.get("OUTBOX_AWS_ENDPOINT_URL") or None,
        },
    }
    if os.environ.get("OUTBOX_ARCHIVE_BUCKET")
    else {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(BASE_DIR / "var" / "archive")},
    },
}

OUTBOX = {
    "TOPIC_NAME": os.environ.get("OUTBOX_TOPIC_NAME", "outbox-events"),
    "TOPIC_ARN": os.environ.get("OUTBOX_TOPIC_ARN") or None,
    "AWS_REGION": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
    "AWS_ENDPOINT_URL": os.environ.get("OUTBOX_AWS_ENDPOINT_URL") or None,
    "SOURCE": "/example/accounts",
    "CLAIM_CHECK_STORAGE": "outbox_payloads",
    "NOTIFY": env_flag("OUTBOX_NOTIFY"),
}

INTEGRATIONS = {
    "QUEUE_PREFIX": os.environ.get("INTEGRATIONS_QUEUE_PREFIX", "outbox-"),
    "HANDLERS": {
        "heap": {
            "CLASS": "integrations.handlers.heap.HeapHandler",
            "OPTIONS": {
                "APP_ID": os.environ.get("HEAP_APP_ID"),
                "BASE_URL": os.environ.get("HEAP_BASE_URL", "https://heapanalytics.com"),
            },
        },
        "mailchimp": {
            "CLASS": "integrations.handlers.mailchimp.MailchimpHandler",
            "OPTIONS": {
                "API_KEY": os.environ.get("MAILCHIMP_API_KEY"),
                "LIST_ID": os.environ.get("MAILCHIMP_LIST_ID"),
                "BASE_URL": os.environ.get("MAILCHIMP_BASE_URL"),
            },
        },
        "slack": {
            "CLASS": "integrations.handlers.slack.SlackHandler",
            "OPTIONS": {"WEBHOOK_URL": os.environ.get("SLACK_WEBHOOK_URL")},
        },
    },
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_ALWAYS_EAGER = env_flag("CELERY_TASK_ALWAYS_EAGER")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "project.logging.ExtraFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "werkzeug": {"level": "WARNING"},
    },
}
