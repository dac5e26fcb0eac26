"""The pipelines' images, the parts that run: what Git ignores (asked of git), and the
entrypoint that makes Quix Cloud's mounted state volume writable, run for real, as root, the
way the image starts it (tests/unit/test_images.py checks the rest without a process)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sources.app import entrypoint
from tests.support.repo import ROOT


@pytest.mark.parametrize(
    "path",
    [".env", "compose.local.yaml", ".secrets", "certificates/ca.pem", "pipelines/trades/.env"],
)
def test_git_ignores_what_quix_init_ignores(path: str) -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, f"{path} is not ignored by .gitignore"


# ---------------------------------------------------------------------------------------
# The entrypoint


needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the image starts it as root"
)


def run_entrypoint(state: Path, *command: str, user: str = "nobody") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sources.app.entrypoint", "--user", user, "--", *command],
        cwd=state.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT), "Quix__Deployment__State__Path": str(state)},
        capture_output=True,
        text=True,
        timeout=30,
    )


@needs_root
def test_a_root_owned_state_volume_is_given_to_the_app_user_who_then_runs_the_app() -> None:
    """What Quix Cloud does: a volume owned by root (with files of an older image that ran as
    root) mounted over the state folder."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        state = Path(folder) / "state"
        (state / "store").mkdir(parents=True)
        (state / "store" / "CURRENT").write_text("MANIFEST-1")
        os.chmod(state, 0o755)  # root's: nobody else may write
        script = 'touch "$0/written" && id -u > "$0/uid" && cat "$0/store/CURRENT" >/dev/null'
        done = run_entrypoint(state, "/bin/sh", "-c", script, str(state))
        assert done.returncode == 0, done.stderr
        nobody = 65534
        assert (state / "uid").read_text().strip() == str(nobody)  # the app ran as the user
        for path in (state, state / "store", state / "store" / "CURRENT", state / "written"):
            assert path.stat().st_uid == nobody, path


@needs_root
def test_a_state_folder_nobody_can_write_stops_the_start_saying_what_to_do() -> None:
    state = Path("/proc/kraken-trades-state")  # not even root may create it
    done = run_entrypoint(state, "/bin/sh", "-c", "echo started")
    assert done.returncode == entrypoint.EXIT_CONFIG
    assert "started" not in done.stdout
    assert f"the state folder {state} is not writable by uid 65534" in done.stderr
    assert "Start the container as root" in done.stderr
