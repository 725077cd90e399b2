"""A log formatter that shows the ids passed in ``extra``."""

import logging

_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class ExtraFormatter(logging.Formatter):
    """Append ``key=value`` for every attribute a call added through ``extra``."""

    def format(self, record):
        text = super().format(record)
        extras = {
            key: value
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")
        }
        if not extras:
            return text
        pairs = " ".join(f"{key}={value}" for key, value in sorted(extras.items()))
        return f"{text} [{pairs}]"
