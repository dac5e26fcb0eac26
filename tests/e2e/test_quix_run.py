"""Each app runs the way `quix run` and Quix Cloud run it: `python main.py` in its own folder,
in a fresh virtualenv made from that app's requirements.txt only, without PYTHONPATH.

With no broker answering it must get past every import and stop at the broker check: its log
names the broker address and it exits 1. A module missing from requirements.txt shows up
here as a ModuleNotFoundError instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.kafka import free_port
from tests.support.repo import ROOT

APPS = ("trades", "candles", "audit")
# what each app does when no broker answers: the pipelines wait and exit 1; the audit cannot
# check anything and says so with 2
NO_BROKER_EXIT = {"trades": 1, "candles": 1, "audit": 2}
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[^=\s]+$")
IMPORT_FAILURES = ("ModuleNotFoundError", "ImportError", "Traceback")
VENV_BUILD_TIMEOUT = 600.0  # seconds; a cold pip cache downloads quixstreams and its deps
RUN_TIMEOUT = 60.0


def requirements(app: str) -> Path:
    return ROOT / "pipelines" / app / "requirements.txt"


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@pytest.fixture(scope="module")
def app_pythons(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fresh venv per app (built in parallel), from its requirements.txt alone.

    For speed the venvs get no pip of their own (this environment's pip installs into them
    with `pip --python`, from its cache) and no bytecode is compiled; pytest's temporary
    folders are removed in a later session, not now.
    """
    root = tmp_path_factory.mktemp("quix-run")
    venvs = {app: root / app for app in APPS}
    for venv in venvs.values():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    installs = {
        app: subprocess.Popen(
            [
                *(sys.executable, "-m", "pip", "--python", str(_venv_python(venv))),
                *("install", "--quiet", "--no-compile", "--disable-pip-version-check"),
                *("-r", str(requirements(app))),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for app, venv in venvs.items()
    }
    for app, install in installs.items():
        output, _ = install.communicate(timeout=VENV_BUILD_TIMEOUT)
        assert install.returncode == 0, f"pip install -r {requirements(app)}:\n{output.decode()}"
    return {app: _venv_python(venv) for app, venv in venvs.items()}


@pytest.mark.parametrize("app", APPS)
def test_requirements_are_pinned(app: str) -> None:
    lines = [
        line.split("#", 1)[0].strip()
        for line in requirements(app).read_text(encoding="utf-8").splitlines()
    ]
    unpinned = [line for line in lines if line and not PINNED.match(line)]
    assert not unpinned, f"{requirements(app)}: not pinned with ==: {unpinned}"


def _names(app: str) -> set[str]:
    """The (normalized) names of the packages an app's requirements.txt lists."""
    lines = requirements(app).read_text(encoding="utf-8").splitlines()
    specs = [line.split("#", 1)[0].strip() for line in lines]
    return {
        re.split(r"[=<>!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-")
        for spec in specs
        if spec
    }


def test_requirements_list_what_the_code_imports() -> None:
    trades = {"quixstreams", "confluent-kafka", "websocket-client", "orjson", "httpx"}
    assert trades | {"prometheus-client"} <= _names("trades")
    assert {"quixstreams", "confluent-kafka", "prometheus-client"} <= _names("candles")
    assert "websocket-client" not in _names("candles")
    assert {"quixstreams", "confluent-kafka", "orjson", "httpx", "jsonschema"} <= _names("audit")


@pytest.mark.parametrize("app", APPS)
def test_app_reaches_the_broker_check(app: str, app_pythons: dict[str, Path]) -> None:
    address = f"127.0.0.1:{free_port()}"  # free, so closed: nothing answers there
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "Quix__Broker__Address": address,
        "broker_timeout": "2",
        "embedded_broker": "never",
        "metrics_port": str(free_port()),  # the metrics server starts too (its imports count)
    }
    started = time.monotonic()
    result = subprocess.run(
        [str(app_pythons[app]), "main.py"],
        cwd=ROOT / "pipelines" / app,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=RUN_TIMEOUT,
    )
    log = result.stdout.decode(errors="replace")
    took = time.monotonic() - started
    failures = [word for word in IMPORT_FAILURES if word in log]
    assert not failures, f"{app} failed before the broker check ({failures}):\n{log}"
    assert address in log, f"{app}: the log does not name the broker {address}:\n{log}"
    code = NO_BROKER_EXIT[app]
    assert result.returncode == code, f"{app} exited {result.returncode}, not {code}:\n{log}"
    assert took < RUN_TIMEOUT / 2, f"{app} took {took:.0f} s with broker_timeout=2"
