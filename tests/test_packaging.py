"""The distribution, installed into a fresh virtual environment, runs a
project that is not ours: tests/example_project, a shop whose orders reach a
warehouse through the outbox, the fan-out and its own handler.

The wheel is built and installed once per test session. The example
project's processes run from that environment with the repository off
``sys.path``, so they can only import what the wheel contains.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import uuid
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PROJECT = ROOT / "tests" / "example_project"
COMMAND_TIMEOUT = 120  # seconds; migrate and the AWS calls take a few seconds

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """Build the distribution's wheel from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (path,) = out.glob("*.whl")
    return path


@pytest.fixture(scope="session")
def installed_python(wheel, tmp_path_factory) -> Path:
    """Return the interpreter of a new virtual environment holding the wheel."""
    environment = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True, capture_output=True, timeout=600,
    )
    return python


def wheel_top_level_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/")[0] for name in archive.namelist()}


def test_wheel_contains_only_reusable_apps(wheel):
    names = wheel_top_level_names(wheel)
    packages = {name for name in names if not name.endswith(".dist-info")}
    assert packages == {"outbox", "integrations"}


def test_wheel_contains_migrations(wheel):
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    assert "outbox/migrations/0001_initial.py" in files
    assert "integrations/migrations/0001_initial.py" in files


def test_wheel_contains_package_data(wheel):
    expected = {
        path.relative_to(ROOT).as_posix()
        for package in ("outbox", "integrations")
        for path in (ROOT / package).rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc"}
        and "__pycache__" not in path.parts
    }
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    assert any(name.endswith(".html") for name in expected)
    assert expected - files == set()


def test_wheel_declares_extras(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith("/METADATA"))
        metadata = archive.read(metadata_name).decode()
    extras = {
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Provides-Extra:")
    }
    assert {"s3", "celery", "metrics", "tracing"} <= extras


class Shop:
    """Runs the example project's manage.py with the installed interpreter."""

    def __init__(self, python: Path, env: dict[str, str], log_dir: Path):
        self.python = python
        self.env = env
        self.log_dir = log_dir

    def manage(self, *args: str) -> str:
        completed = subprocess.run(
            [str(self.python), "manage.py", *args],
            cwd=EXAMPLE_PROJECT, env=self.env, capture_output=True, text=True,
            timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL,
        )
        log = self.log_dir / f"{args[0]}.log"
        log.write_text(completed.stdout + completed.stderr)
        assert completed.returncode == 0, (
            f"manage.py {' '.join(args)} exited {completed.returncode}:\n"
            f"{completed.stdout}{completed.stderr}"
        )
        return completed.stdout


@pytest.fixture
def shop(installed_python, moto_server, httpserver, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="example_site.settings",
        SHOP_DATABASE=str(tmp_path / "shop.sqlite3"),
        SHOP_AWS_ENDPOINT_URL=moto_server,
        SHOP_TOPIC_NAME=f"shop-{suffix}",
        SHOP_QUEUE_PREFIX=f"shop{suffix}-",
        SHOP_WAREHOUSE_URL=httpserver.url_for("/orders"),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        PYTHONUNBUFFERED="1",
        # Keeps the checkout's __pycache__ free of the example's byte code.
        PYTHONDONTWRITEBYTECODE="1",
    )
    return Shop(installed_python, env, tmp_path)


def test_installed_apps_come_from_wheel(installed_python):
    completed = subprocess.run(
        [str(installed_python), "-c",
         "import integrations, outbox; "
         "print(outbox.__path__[0]); print(integrations.__path__[0])"],
        cwd=EXAMPLE_PROJECT, capture_output=True, text=True, check=True,
        env={"PATH": os.environ["PATH"]},
    )
    paths = completed.stdout.split()
    assert len(paths) == 2
    for path in paths:
        assert "site-packages" in path
        assert not path.startswith(str(ROOT) + os.sep)


def test_example_order_reaches_warehouse(shop, httpserver, tmp_path):
    httpserver.expect_request("/orders", method="POST").respond_with_json({"ok": True})

    shop.manage("migrate", "--no-input")
    fanout_output = shop.manage("setup_fanout")
    assert "fan-out ready" in fanout_output
    shop.manage(
        "shell", "-c",
        "from shop.models import Order; Order.objects.create(sku='TEA-250', quantity=3)",
    )
    shop.manage("relay_outbox", "--once")
    shop.manage("consume_integration", "warehouse", "--once")

    # sqlite3's own context manager commits but does not close.
    with contextlib.closing(sqlite3.connect(tmp_path / "shop.sqlite3")) as database:
        rows = database.execute(
            "SELECT id, type, subject, status FROM outbox_outboxevent"
        ).fetchall()
        order_id = database.execute("SELECT id FROM shop_order").fetchone()[0]
    assert len(rows) == 1
    event_id, event_type, subject, status = rows[0]
    assert event_type == "order.placed"
    assert subject == str(order_id)
    assert status == "published"

    assert len(httpserver.log) == 1
    request, response = httpserver.log[0]
    assert response.status_code == 200
    assert request.method == "POST"
    assert request.path == "/orders"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == str(uuid.UUID(str(event_id)))
    assert json.loads(request.get_data()) == {
        "order_id": str(order_id),
        "sku": "TEA-250",
        "quantity": 3,
    }
