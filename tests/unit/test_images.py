"""The pipelines' images, checked without a Docker engine (none runs here): the dockerfiles as
parsed by dockerfile-parse, the build context as Docker's own SDK filters it by
.dockerignore, and the entrypoint that makes Quix Cloud's mounted state volume writable (its
logic; run for real, and what Git ignores: tests/component/test_images.py)."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser
from quixstreams import Application

from sources.app import entrypoint
from sources.app.variables import CANDLES, TRADES
from tests.support.descriptors import ROOT, app_yaml

APPS = {"trades": TRADES, "candles": CANDLES}
EXACT_PYTHON = re.compile(r"^python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?$")
IN_CONTEXT = [
    "pipelines/trades/main.py",
    "pipelines/trades/requirements.txt",
    "pipelines/trades/transforms_example.py",
    "pipelines/candles/main.py",
    "pipelines/audit/main.py",
    "schemas/trade.v1.json",  # the audit validates records against them
    "schemas/gap.v1.json",
    "sources/app/entrypoint.py",
    "sources/kraken/source.py",
]
NEVER_IN_CONTEXT = [
    ".venv/bin/python",
    "pipelines/trades/.venv/bin/python",  # a venv per app, as `quix run` may leave
    ".env",
    "pipelines/trades/.env",
    "compose.local.yaml",
    ".secrets",
    "certificates/ca.pem",
    "pipelines/trades/state/kraken-trades/default/CURRENT",
    "tests/unit/test_images.py",
]


def dockerfile(app: str) -> DockerfileParser:
    # in memory: a parser given no file object writes ./Dockerfile where pytest runs
    parser = DockerfileParser(fileobj=io.BytesIO())
    parser.content = (
        ROOT / "pipelines" / app / app_yaml(f"pipelines/{app}")["dockerfile"]
    ).read_text()
    return parser


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == name]


@pytest.mark.parametrize("app", [*APPS, "audit"])
def test_the_base_image_is_an_exact_release(app: str) -> None:
    assert EXACT_PYTHON.match(dockerfile(app).baseimage), dockerfile(app).baseimage


@pytest.mark.parametrize("app", APPS)
def test_the_image_starts_as_root_and_runs_the_app_through_the_entrypoint(app: str) -> None:
    parser = dockerfile(app)
    assert not instructions(parser, "USER"), "the entrypoint must start as root to chown the volume"
    command = json.loads(instructions(parser, "ENTRYPOINT")[-1])
    assert command[:3] == ["python3", "-m", "sources.app.entrypoint"]
    user = command[command.index("--user") + 1]
    assert command[command.index("--") + 1 :] == [
        "python3",
        app_yaml(f"pipelines/{app}")["runEntryPoint"],
    ]
    created = " ".join(instructions(parser, "RUN"))
    assert re.search(rf"useradd\b.*\b{user}\b", created), f"the image never creates {user!r}"
    assert "sources" in app_yaml(f"pipelines/{app}")["includedFolders"]  # the entrypoint ships


@pytest.mark.parametrize("app", APPS)
def test_the_image_exposes_the_metrics_port(app: str) -> None:
    port = next(v.default for v in APPS[app] if v.name == "metrics_port")
    assert instructions(dockerfile(app), "EXPOSE") == [port]


@pytest.fixture(scope="module")
def context() -> Iterator[set[str]]:
    """What Docker sends as the build context of a checkout holding every path above."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for path in IN_CONTEXT + NEVER_IN_CONTEXT:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text("x")
        patterns = [
            line.strip()
            for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        yield set(exclude_paths(str(root), patterns))


@pytest.mark.parametrize("path", IN_CONTEXT)
def test_the_build_context_holds_what_the_apps_run(context: set[str], path: str) -> None:
    assert path in context


@pytest.mark.parametrize("path", NEVER_IN_CONTEXT)
def test_the_build_context_never_holds_venvs_secrets_state_or_tests(
    context: set[str], path: str
) -> None:
    assert path not in context


# ---------------------------------------------------------------------------------------
# The entrypoint


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"Quix__Deployment__Id": "d1"},  # a Quix deployment without a volume: the Job
        {"Quix__Deployment__Id": "d1", "Quix__Deployment__State__Path": "/data/state"},
    ],
    ids=["local", "quix-job", "quix-volume"],
)
def test_the_entrypoint_finds_the_state_folder_where_quix_streams_keeps_it(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("Quix__Deployment__Id", "Quix__Deployment__State__Path", "Quix__State__Dir"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    app = Application(broker_address="127.0.0.1:1", consumer_group="g")
    expected = Path.cwd() / app.config.state_dir
    assert entrypoint.state_folder(os.environ, Path.cwd()) == expected


def test_without_root_it_only_checks_and_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A platform that starts the container as another user: nothing to chown, a check."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("Quix__Deployment__State__Path", "/proc/kraken-trades-state")
    became = []
    monkeypatch.setattr(entrypoint, "become", became.append)
    monkeypatch.setattr(os, "execvp", lambda *a: pytest.fail("the app started"))
    assert entrypoint.main(["--user", "app", "--", "python3", "main.py"]) == 2
    assert not became
    assert "is not writable" in capsys.readouterr().err


def test_a_writable_state_folder_starts_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("Quix__Deployment__State__Path", str(tmp_path / "state"))
    started = []
    monkeypatch.setattr(os, "execvp", lambda file, args: started.append(args))
    entrypoint.main(["--user", "app", "--", "python3", "main.py"])
    assert started == [["python3", "main.py"]]
    assert stat.S_ISDIR((tmp_path / "state").stat().st_mode)
