"""The images' entrypoint: make the state folder writable, then run the app unprivileged.

Quix Cloud mounts a Service's persistent state volume over the state folder when the
container starts: what the image says about that folder's owner does not carry onto the
volume, and RocksDB cannot open its store in a folder it cannot write. So, as Quix's own
templates do (their `init.sh`), the container starts as root, gives the state folder to the
unprivileged user, and runs the app as that user. Started as another user already (a
platform that forbids root), it checks that the folder is writable and says what to do when
it is not (exit 2), before the app starts.

    python3 -m sources.app.entrypoint --user app -- python3 main.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["main", "state_folder"]

EXIT_CONFIG = 2
QUIX_MOUNT = Path("/app/state")  # Quix Cloud's default mount path


def state_folder(environ: Mapping[str, str], cwd: Path) -> Path:
    """Where Quix Streams keeps the state, by its own rule (`Application`'s `state_dir`):
    the platform's mount path, else the deprecated override, else /app/state in a Quix
    deployment, else ./state."""
    chosen = environ.get("Quix__Deployment__State__Path") or environ.get("Quix__State__Dir")
    if chosen:
        return Path(chosen)
    if environ.get("Quix__Deployment__Id"):
        return QUIX_MOUNT
    return cwd / "state"


def give_to(folder: Path, uid: int, gid: int) -> None:
    """Create `folder` if needed and make it, and all in it, owned by uid:gid."""
    folder.mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(folder):
        for path in (root, *(os.path.join(root, name) for name in (*dirs, *files))):
            status = os.lstat(path)
            if (status.st_uid, status.st_gid) != (uid, gid):
                os.lchown(path, uid, gid)


def become(account: pwd.struct_passwd) -> None:
    """Drop root for `account`: no supplementary groups, its group, its user, its home."""
    os.setgroups([])
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    os.environ["HOME"] = account.pw_dir
    os.environ["USER"] = account.pw_name


def unwritable(folder: Path) -> str | None:
    """Why the current user cannot create files in `folder`, or None when it can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as exc:
        return f"{exc.strerror or exc}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", required=True, help="the unprivileged user to run as")
    parser.add_argument("command", nargs="+", help="the app's command line (after --)")
    args = parser.parse_args(argv)
    folder = state_folder(os.environ, Path.cwd())
    if os.geteuid() == 0:
        account = pwd.getpwnam(args.user)
        with contextlib.suppress(OSError):  # a folder even root cannot change: checked below
            give_to(folder, account.pw_uid, account.pw_gid)
        become(account)
    reason = unwritable(folder)
    if reason is not None:
        print(
            f"Configuration error: the state folder {folder} is not writable by uid "
            f"{os.getuid()} ({reason}); the app keeps its state (RocksDB) there. On Quix "
            f"Cloud it is the deployment's persistent state volume. Start the container as "
            f"root (the image drops to {args.user!r} by itself once the folder is "
            f"{args.user!r}'s), or make the folder writable for uid {os.getuid()} (e.g. "
            f"`chown -R {os.getuid()} {folder}` or an fsGroup).",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_CONFIG
    os.execvp(args.command[0], args.command)
    return 1  # not reached: execvp replaces this process


if __name__ == "__main__":
    sys.exit(main())
