"""The commands on the README's first screen work on a fresh clone.

The first screen is the README up to `<!-- end of the first screen -->`; its commands are the
lines of its ```bash blocks. The repository is `git clone`d into a temporary folder (plus the
uncommitted changes of tracked files, so that a run before a commit tests what is there;
untracked files are left out, as a clone would), and each command is either run there or
skipped for a stated reason. A command nobody classified fails the test, so a new one on the
first screen gets a decision:

- run: those that need no network. They run as written, in the clone, with two additions:
  make reuses this test run's virtualenv (`VENV=…`, and `-o` so that it does not reinstall:
  on a fresh clone `make` would install from PyPI, which is network), and the environment
  points them at the test broker (`Quix__Broker__Address`, `output`: the variables a user sets
  too). `make tail` reads trades the test wrote and is stopped with Ctrl-C (SIGINT to its
  process group), as a user does;
- not run: `make test` (the test command itself); `make run` (it streams from Kraken's live
  WebSocket: network); `quix run` (the Quix CLI cannot be installed here: the test checks
  instead that the deployment it names is one of `pipelines/trades` in quix.yaml).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from ruamel.yaml import YAML

from tests.support.kafka import create_topic, unique
from tests.support.repo import ROOT

FIRST_SCREEN_END = "<!-- end of the first screen -->"
VENV = Path(sys.prefix)
MINUTE_MS = 60_000
TRADE_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  (\S+)\s+#(\d+) ", re.M)

pytestmark = pytest.mark.skipif(
    not (ROOT / ".git").exists() or not shutil.which("git") or not shutil.which("make"),
    reason="needs a git checkout, git and make",
)


def first_screen_commands() -> list[str]:
    """The command lines of the ```bash blocks on the README's first screen, comments dropped."""
    first = (ROOT / "README.md").read_text().split(FIRST_SCREEN_END)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", first, re.S):
        for line in block.splitlines():
            command = re.sub(r"(^|\s+)#.*$", "", line).strip()  # a comment: ` # …`
            if command:
                commands.append(command)
    return commands


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone of this repository, with the uncommitted changes of tracked files."""
    target = tmp_path_factory.mktemp("readme") / "kraken-trades"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    diff = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "HEAD", "--binary"], capture_output=True, check=True
    ).stdout
    if diff:
        subprocess.run(["git", "-C", str(target), "apply"], input=diff, check=True)
    return target


def make_here(command: str) -> list[str]:
    """`make …` with this test run's virtualenv, never reinstalled (that needs PyPI)."""
    words = shlex.split(command)
    stamps = [f"-o{VENV}/.installed-{extra}" for extra in ("local", "test", "simulator")]
    return [words[0], *stamps, f"VENV={VENV}", *words[1:]]


def run_make_tail(command: str, clone: Path, broker: str) -> None:
    """`make tail …` in the clone against trades of two pairs, some older than `--since`."""
    topic = unique("readme-trades")
    create_topic(broker, topic, partitions=3)
    now_ms = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": broker})
    written = []
    for i in range(20):  # one trade a minute per pair over the last 20 minutes
        for pair in ("BTC/USD", "ETH/USD"):
            timestamp_ms = now_ms - (20 - i) * MINUTE_MS + 30_000
            value = {"pair": pair, "price": 65000.5, "volume": 0.25, "side": "buy"}
            value |= {"order_type": "limit", "trade_id": 500 + i, "timestamp_ms": timestamp_ms}
            value |= {"timestamp": "", "origin": "ws"}
            producer.produce(topic, key=pair, value=orjson.dumps(value), timestamp=timestamp_ms)
            written.append(value)
    producer.flush(30)
    args = [shlex.split(w[5:]) for w in shlex.split(command) if w.startswith("ARGS=")]
    assert args == [["--pairs", "BTC/USD", "--since", "10m"]], "update the expectation below"
    expected = [
        (v["pair"], str(v["trade_id"]))
        for v in written
        if v["pair"] == "BTC/USD" and v["timestamp_ms"] >= now_ms - 10 * MINUTE_MS
    ]
    env = {
        k: v for k, v in os.environ.items() if k.lower() not in ("output", "quix__broker__address")
    }
    env |= {"Quix__Broker__Address": broker, "output": topic, "MAKEFLAGS": ""}
    process = subprocess.Popen(
        make_here(command),
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as in a terminal: Ctrl-C reaches all
    )
    out = _read_until(process, lambda text: len(TRADE_LINE.findall(text)) >= len(expected))
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=30)
    err = process.stderr.read()  # type: ignore[union-attr]
    printed = TRADE_LINE.findall(out)
    assert len(expected) >= 9 and printed == expected, f"stdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in err, err
    assert f"Reading {topic} at {broker}" in err


def _read_until(process: subprocess.Popen[str], done: Callable[[str], bool]) -> str:
    """Its stdout so far, once `done(stdout)` (or after 90 s), read by a thread."""
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not done("".join(lines)) and process.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # anything more it would print (it should not)
    return "".join(lines)


def check_quix_run(command: str) -> None:
    """Not run (no Quix CLI here): its deployment is one of pipelines/trades in quix.yaml."""
    deployment = shlex.split(command)[shlex.split(command).index("--deployment") + 1]
    quix = YAML(typ="safe").load((ROOT / "quix.yaml").read_text())
    apps = {d["name"]: d["application"] for d in quix["deployments"]}
    assert apps.get(deployment) == "pipelines/trades"
    folder = shlex.split(command)[1]
    assert (ROOT / folder / "main.py").is_file() and folder == "pipelines/trades"
    sharing = [name for name, app in apps.items() if app == "pipelines/trades"]
    assert len(sharing) > 1  # why --deployment is needed


def test_the_first_screen_commands_work_on_a_fresh_clone(clone: Path, broker: str) -> None:
    commands = first_screen_commands()
    assert commands, "no ```bash block on the README's first screen"
    for command in commands:
        if command == "make test":
            continue  # the test command itself
        if command == "make run":
            continue  # streams from Kraken's live WebSocket: network
        if command.startswith("cd pipelines/trades && quix run "):
            check_quix_run(command)
        elif command.startswith("make tail "):
            run_make_tail(command, clone, broker)
        else:
            pytest.fail(f"classify the README command {command!r}: run it here, or say why not")
