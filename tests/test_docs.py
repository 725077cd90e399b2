"""The reference docs list every setting, command option and signal that the
code defines, and their links between pages resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import load_command_class
from django.core.management.base import BaseCommand
from django.dispatch import Signal

from integrations import conf as integrations_conf
from integrations import signals as integration_signals
from outbox import conf as outbox_conf
from outbox import signals as outbox_signals

DOCS = Path(__file__).resolve().parent.parent / "docs"
COMMANDS = [
    ("outbox", "relay_outbox"),
    ("outbox", "purge_outbox"),
    ("outbox", "outbox_stats"),
    ("integrations", "consume_integration"),
    ("integrations", "setup_fanout"),
]
LINK = re.compile(r"\]\(([^)#\s]+\.md)(#[^)]*)?\)")


def read(page: str) -> str:
    return (DOCS / page).read_text()


@pytest.mark.parametrize("key", sorted(outbox_conf.DEFAULTS))
def test_settings_page_lists_outbox_key(key):
    assert f"| `{key}` |" in read("reference/settings.md")


@pytest.mark.parametrize("key", sorted(integrations_conf.DEFAULTS))
def test_settings_page_lists_integrations_key(key):
    assert f"| `{key}` |" in read("reference/settings.md")


@pytest.mark.parametrize("key", sorted(integrations_conf.HANDLER_KEYS))
def test_settings_page_lists_handler_key(key):
    assert f"`{key}`" in read("reference/settings.md")


def command_options(app: str, name: str) -> list[str]:
    """Return the long options a command adds to Django's common ones."""
    common = {
        action.dest
        for action in BaseCommand().create_parser("manage.py", "base")._actions
    }
    parser = load_command_class(app, name).create_parser("manage.py", name)
    return [
        option
        for action in parser._actions
        if action.dest not in common
        for option in action.option_strings
        if option.startswith("--")
    ]


@pytest.mark.parametrize(("app", "name"), COMMANDS)
def test_commands_page_lists_every_option(app, name):
    page = read("reference/commands.md")
    section = page.split(f"## `{name}")[1].split("\n## ")[0]
    for option in command_options(app, name):
        assert f"`{option}" in section, f"{option} of {name} is not documented"


@pytest.mark.parametrize(
    "name",
    sorted(
        name
        for module in (outbox_signals, integration_signals)
        for name, value in vars(module).items()
        if isinstance(value, Signal)
    ),
)
def test_signals_page_lists_signal(name):
    assert f"### `{name}`" in read("reference/signals.md")


def test_docs_links_resolve():
    broken = []
    for page in DOCS.rglob("*.md"):
        for target, _ in LINK.findall(page.read_text()):
            if target.startswith("http"):
                continue
            if not (page.parent / target).resolve().exists():
                broken.append(f"{page.relative_to(DOCS)} -> {target}")
    assert broken == []
