"""Loads handler classes named in ``INTEGRATIONS["HANDLERS"]``."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from integrations import conf
from integrations.base import Handler


def enabled_names() -> list[str]:
    return [
        name
        for name, entry in conf.handler_entries().items()
        if entry.get("ENABLED", True)
    ]


def handler_class(name: str) -> type[Handler]:
    entries = conf.handler_entries()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise ImproperlyConfigured(
            f"unknown integration {name!r}; configured integrations: {known}. "
            "Add it to INTEGRATIONS['HANDLERS']."
        )
    path = entries[name]["CLASS"]
    try:
        cls = import_string(path)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"handler class {path!r} of integration {name!r} cannot be imported: {error}"
        ) from error
    if not (isinstance(cls, type) and issubclass(cls, Handler)):
        raise ImproperlyConfigured(
            f"{path!r} of integration {name!r} is not a subclass of "
            "integrations.base.Handler."
        )
    if not cls.event_types:
        raise ImproperlyConfigured(
            f"handler {path!r} of integration {name!r} declares no event_types."
        )
    return cls


def event_types(name: str) -> tuple[str, ...]:
    return tuple(handler_class(name).event_types)


def create_handler(name: str) -> Handler:
    cls = handler_class(name)
    options = conf.handler_entries()[name].get("OPTIONS") or {}
    if not isinstance(options, dict):
        raise ImproperlyConfigured(
            f"INTEGRATIONS['HANDLERS'][{name!r}]['OPTIONS'] must be a dict."
        )
    return cls(name, options)
