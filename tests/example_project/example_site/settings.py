"""Settings of a small shop that adds the outbox and integrations apps.

It stands for a user's existing project: it installs the distribution,
lists the two apps, and configures them with the ``OUTBOX`` and
``INTEGRATIONS`` dictionaries. Values that differ per run come from
environment variables.
"""

import os

SECRET_KEY = "example-shop-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "outbox",
    "integrations",
    "shop",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["SHOP_DATABASE"],
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}

OUTBOX = {
    "AWS_ENDPOINT_URL": os.environ.get("SHOP_AWS_ENDPOINT_URL") or None,
    "AWS_REGION": "us-east-1",
    "TOPIC_NAME": os.environ.get("SHOP_TOPIC_NAME", "shop-events"),
    "SOURCE": "/shop/orders",
}

INTEGRATIONS = {
    "QUEUE_PREFIX": os.environ.get("SHOP_QUEUE_PREFIX", "shop-"),
    "HANDLERS": {
        "warehouse": {
            "CLASS": "shop.handlers.WarehouseHandler",
            "OPTIONS": {"URL": os.environ.get("SHOP_WAREHOUSE_URL"), "TIMEOUT": 5},
        },
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"botocore": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}
