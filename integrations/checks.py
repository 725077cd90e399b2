"""System checks that report bad integration configuration at start-up."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from integrations import conf, registry


@checks.register()
def check_integrations(app_configs, **kwargs):
    try:
        names = registry.enabled_names()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="integrations.E001")]
    errors = []
    for name in names:
        try:
            handler = registry.create_handler(name)
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id="integrations.E002"))
            continue
        missing = handler.missing_options()
        if missing and handler.transport == "http":
            errors.append(
                checks.Error(
                    f"integration {name!r} uses the http transport but "
                    f"OPTIONS {', '.join(missing)} are not set.",
                    hint="Set them, or remove OPTIONS['TRANSPORT'] to fall back to "
                    "the console transport.",
                    id="integrations.E003",
                )
            )
        try:
            visibility = conf.queue_setting(name, "VISIBILITY_TIMEOUT")
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id="integrations.E004"))
            continue
        if visibility < handler.timeout:
            errors.append(
                checks.Error(
                    f"VISIBILITY_TIMEOUT of integration {name!r} ({visibility} s) is "
                    f"shorter than its handler timeout ({handler.timeout:g} s).",
                    hint="Raise VISIBILITY_TIMEOUT above the handler's TIMEOUT so a "
                    "slow call does not make the message visible to another consumer.",
                    id="integrations.E005",
                )
            )
        handler.close()
    return errors
