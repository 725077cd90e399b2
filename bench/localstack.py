"""Install, start and stop LocalStack's runtime on 127.0.0.1, without Docker.

LocalStack is a second local AWS beside moto's server, and closer to AWS
where it matters here. It counts the SNS message size in UTF-8 bytes, it
rejects SQS bodies with characters outside the XML character range, and its
cost per call stays flat as queues fill. It runs from PyPI's ``localstack-core`` in its own virtual
environment because it needs Python 3.13 and pins its own dependencies.

Command line::

    python bench/localstack.py install       # create the cached venv
    python bench/localstack.py start         # start in the background
    python bench/localstack.py stop          # stop what `start` started
    python bench/localstack.py run -- CMD    # run CMD against a fresh server

Python::

    with LocalStackServer() as server:
        boto3.client("sns", endpoint_url=server.endpoint_url)
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

VERSION = "2026.3.0"
# The set that ran localstack-core 2026.3.0 here. cbor2, pyOpenSSL and
# cryptography stay below major versions it was not run with.
REQUIREMENTS = [
    f"localstack-core[runtime]=={VERSION}",
    "cbor2<6",
    "pyopenssl<26",
    "cryptography<47",
    "service_identity",
]
SERVICES = "sns,sqs,s3"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATE_ROOT = PROJECT_ROOT / ".localstack"
PID_FILE = STATE_ROOT / "localstack.pid"
INSTALL_HINT = "run `make localstack-install` (python bench/localstack.py install)"


class LocalStackError(RuntimeError):
    """LocalStack is not installed, did not start, or did not stop."""


# Installation ---------------------------------------------------------------


def cache_dir() -> Path:
    """Return the per-version cache folder, shared by every clone on the machine."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "outbox-localstack" / VERSION


def venv_python() -> Path:
    return cache_dir() / "venv" / "bin" / "python"


def installed_marker() -> Path:
    return cache_dir() / "venv" / ".installed"


def is_installed() -> bool:
    return installed_marker().exists() and venv_python().exists()


def find_python313() -> str:
    """Return a Python 3.13 interpreter: LOCALSTACK_PYTHON, pyenv, then PATH."""
    configured = os.environ.get("LOCALSTACK_PYTHON")
    if configured:
        return configured
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = sorted(glob.glob(f"{pyenv_root}/versions/3.13*/bin/python3.13"))
    # pyenv's shim on PATH exits with 127 unless 3.13 is selected, so the
    # versions folder comes first and each candidate must run.
    candidates.append(shutil.which("python3.13") or "")
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    # Older Pythons fail inside LocalStack's plugin loader, which hides the
    # import error, so they are rejected here with a clear message.
    raise LocalStackError(
        "Python 3.13 not found (LocalStack needs it): install it, e.g. "
        "`pyenv install 3.13`, or set LOCALSTACK_PYTHON=/path/to/python3.13"
    )


def install() -> Path:
    """Create the venv with localstack-core unless it exists; return its python."""
    if is_installed():
        logger.info("LocalStack %s already installed in %s", VERSION, cache_dir())
        return venv_python()
    venv = cache_dir() / "venv"
    venv.parent.mkdir(parents=True, exist_ok=True)
    python = find_python313()
    logger.info("Installing LocalStack %s into %s with %s", VERSION, venv, python)
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *REQUIREMENTS], check=True)
    installed_marker().write_text(" ".join(REQUIREMENTS) + "\n")
    return venv_python()


def require_installed() -> Path:
    if not is_installed():
        raise LocalStackError(
            f"LocalStack {VERSION} is not installed in {cache_dir() / 'venv'}: "
            f"{INSTALL_HINT}"
        )
    return venv_python()


# Running --------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(port: int, state_dir: Path) -> dict[str, str]:
    """Return the environment that keeps LocalStack on loopback and offline."""
    # Nothing listens on this port, so license, analytics and update calls
    # fail at once instead of reaching the internet.
    offline = f"http://127.0.0.1:{free_port()}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env.update(
        {
            "OVERRIDE_IN_DOCKER": "0",  # this machine looks like a container
            "GATEWAY_SERVER": "hypercorn",  # the default server binds 0.0.0.0
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "LOCALSTACK_HOST": f"127.0.0.1:{port}",
            # Queue URLs like http://127.0.0.1:PORT/queue/... instead of a
            # *.localstack.cloud host name that needs a public DNS lookup.
            "SQS_ENDPOINT_STRATEGY": "path",
            "SERVICES": SERVICES,
            "EAGER_SERVICE_LOADING": "1",
            "DNS_ADDRESS": "0",  # otherwise it starts a DNS server on port 53
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "SQS_DISABLE_CLOUDWATCH_METRICS": "1",
            "LS_LOG": os.environ.get("LS_LOG", "warn"),
            "API_ENDPOINT": offline,
            "ANALYTICS_API": offline,
            "FILESYSTEM_ROOT": str(state_dir / "filesystem"),
            "CONFIG_DIR": str(state_dir / "config"),
            "XDG_CACHE_HOME": str(state_dir / "cache"),
        }
    )
    return env


def is_healthy(endpoint_url: str) -> bool:
    """Tell whether every service in SERVICES reports "running" or "available"."""
    try:
        with urllib.request.urlopen(
            f"{endpoint_url}/_localstack/health", timeout=2
        ) as response:
            states = json.load(response).get("services", {})
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return all(
        states.get(name) in ("running", "available") for name in SERVICES.split(",")
    )


def process_is_localstack(pid: int) -> bool:
    """Tell whether ``pid`` still runs LocalStack (and not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"localstack.runtime.main" in cmdline


def wait_for_exit(is_running, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_running():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def stop_pid(pid: int, is_running, timeout: float = 10.0) -> None:
    """Stop ``pid`` with SIGTERM, then SIGKILL if it still runs after ``timeout``.

    NOTE: LocalStack 2026.3.0 stops in about 4 s after SIGTERM when no client
    is connected, but with a boto3 client's keep-alive connection still open
    it often never exits (seen on this machine), so SIGKILL is the usual end
    of a test session. A second SIGTERM stopped it only some of the time.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_for_exit(is_running, timeout):
        return
    logger.warning("LocalStack pid %s still runs %ss after SIGTERM; killing", pid, timeout)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class LocalStackServer:
    """One LocalStack process on 127.0.0.1, with its state in a fresh folder.

    ``port=0`` picks a free port. Use it as a context manager, or call
    ``start()`` and ``stop()``; the process is stopped by its own pid, also
    when start-up fails.
    """

    def __init__(
        self,
        port: int = 0,
        state_root: Path | str = STATE_ROOT,
        startup_timeout: float = 90.0,
        stop_timeout: float = 10.0,
        keep_state: bool = False,
    ):
        self.port = port
        self.state_root = Path(state_root)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.keep_state = keep_state
        self.process: subprocess.Popen | None = None
        self.state_dir: Path | None = None
        self.log_file = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "localstack.log"

    def start(self) -> LocalStackServer:
        python = require_installed()
        self.port = self.port or free_port()
        self.state_root.mkdir(parents=True, exist_ok=True)
        self.state_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self.state_root))
        self.log_file = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(python), "-m", "localstack.runtime.main"],
            env=server_environment(self.port, self.state_dir),
            cwd=self.state_dir,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us only
        )
        try:
            self.wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        logger.info("LocalStack pid %s ready at %s", self.process.pid, self.endpoint_url)
        return self

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalStackError(
                    f"LocalStack exited with status {self.process.returncode} "
                    f"during start-up; its log {self.log_path} ends with:\n"
                    f"{self.log_tail()}"
                )
            if is_healthy(self.endpoint_url):
                return
            time.sleep(0.2)
        raise LocalStackError(
            f"LocalStack did not respond at {self.endpoint_url}/_localstack/health "
            f"within {self.startup_timeout}s; its log {self.log_path} ends with:\n"
            f"{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None:
            process = self.process
            stop_pid(process.pid, lambda: process.poll() is None, self.stop_timeout)
            process.wait()
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
        if self.state_dir is not None and not self.keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> LocalStackServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


# Command line ---------------------------------------------------------------


def command_install(args) -> int:
    started = time.monotonic()
    python = install()
    print(f"LocalStack {VERSION}: {python} ({time.monotonic() - started:.1f}s)")
    return 0


def command_start(args) -> int:
    if PID_FILE.exists() and process_is_localstack(int(PID_FILE.read_text().split()[0])):
        print(f"LocalStack already running: {PID_FILE.read_text().split()[1]}")
        return 0
    started = time.monotonic()
    # keep_state: the background process outlives this command and keeps
    # writing to its folder; `stop` removes it.
    server = LocalStackServer(port=args.port, keep_state=True).start()
    PID_FILE.write_text(f"{server.process.pid} {server.endpoint_url} {server.state_dir}\n")
    elapsed = time.monotonic() - started
    print(f"LocalStack pid {server.process.pid} ready in {elapsed:.1f}s")
    print(f"export AWS_ENDPOINT_URL={server.endpoint_url}")
    return 0


def command_stop(args) -> int:
    if not PID_FILE.exists():
        print(f"No {PID_FILE}: nothing started with `start` to stop")
        return 0
    pid_text, _endpoint, state_dir = PID_FILE.read_text().split()
    if process_is_localstack(int(pid_text)):
        stop_pid(int(pid_text), lambda: process_is_localstack(int(pid_text)))
        print(f"Stopped LocalStack pid {pid_text}")
    else:
        print(f"LocalStack pid {pid_text} was not running")
    shutil.rmtree(state_dir, ignore_errors=True)
    PID_FILE.unlink()
    return 0


def command_run(args) -> int:
    command = [part for part in args.command if part != "--"]
    with LocalStackServer(port=args.port) as server:
        print(f"LocalStack pid {server.process.pid} ready at {server.endpoint_url}")
        if not command:
            print("Serving until interrupted (Ctrl-C)")
            try:
                server.process.wait()
            except KeyboardInterrupt:
                pass
            return 0
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": server.endpoint_url,
            "OUTBOX_TEST_AWS_ENDPOINT": server.endpoint_url,
        }
        return subprocess.run(command, env=env).returncode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="subcommand", required=True)
    commands.add_parser("install", help="create the cached venv (idempotent)")
    for name, help_text in (
        ("start", "start in the background; writes .localstack/localstack.pid"),
        ("run", "start, run COMMAND with AWS_ENDPOINT_URL set, then stop"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument(
            "--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)"
        )
    commands.add_parser("stop", help="stop the server that `start` started")
    commands.choices["run"].add_argument(
        "command", nargs=argparse.REMAINDER, help="command to run, after --"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    handler = {
        "install": command_install,
        "start": command_start,
        "stop": command_stop,
        "run": command_run,
    }[args.subcommand]
    try:
        return handler(args)
    except (LocalStackError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
