"""The ``git`` binary, run as a subprocess (no Qt, no DVC).

We call the real ``git`` executable on purpose rather than a Python
re-implementation: a site's own git setup (ssh keys, credential helpers,
proxies, ``insteadOf`` rewrites) then works for the registry exactly as it does
for its administrators. Every call has a timeout, never prompts (a kiosk has no
one at the keyboard to answer), and can be cancelled through a stop event.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

GIT_TIMEOUT_S = 120.0

#: Never ask for a password or confirmation; fail instead.
_QUIET_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
    "LC_ALL": "C",
}


class GitError(Exception):
    """A git command failed; ``stderr`` holds git's own explanation."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.git_args = list(args)
        self.returncode = returncode
        self.stderr = stderr.strip()
        last = self.stderr.splitlines()[-1] if self.stderr else f"exit status {returncode}"
        super().__init__(f"git {' '.join(self.git_args[:2])}: {last}")


class GitCancelledError(GitError):
    """The command was stopped because the kiosk is shutting down."""


def git(
    cwd: Path,
    *args: str,
    timeout: float = GIT_TIMEOUT_S,
    stop: threading.Event | None = None,
    identity: str | None = None,
) -> str:
    """Run ``git args`` in ``cwd`` and return its stdout (stripped), or raise :class:`GitError`.

    ``identity`` (a kiosk id) sets the committer and author of any commit made.
    """
    cmd = ["git"]
    if identity is not None:
        cmd += [
            "-c",
            f"user.name=FaceKiosk {identity}",
            "-c",
            f"user.email={identity}@kiosk.invalid",
        ]
    cmd += list(args)
    env = {**os.environ, **_QUIET_ENV}
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as exc:  # no git binary, or cwd missing
        raise GitError(args, -1, f"cannot run git: {exc}") from exc
    deadline = time.monotonic() + timeout
    while True:
        try:
            out, err = proc.communicate(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            if stop is not None and stop.is_set():
                proc.kill()
                proc.communicate()
                raise GitCancelledError(args, -9, "stopped: the kiosk is shutting down") from None
            if time.monotonic() > deadline:
                proc.kill()
                proc.communicate()
                raise GitError(args, -9, f"no answer within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise GitError(args, proc.returncode, err)
    return out.strip()


def is_git_repo(path: Path) -> bool:
    return (path / ".git").exists()


def head(path: Path) -> str | None:
    try:
        return git(path, "rev-parse", "--verify", "-q", "HEAD")
    except GitError:
        return None


def commit_date(path: Path, rev: str) -> str:
    """The commit date of ``rev`` as ISO 8601 (committer date)."""
    return git(path, "log", "-1", "--format=%cI", rev)


def tracked_files(path: Path, rev: str, *, suffix: str = "") -> list[str]:
    """Files in commit ``rev`` (relative paths), optionally only those ending in ``suffix``."""
    names = git(path, "ls-tree", "-r", "--name-only", rev).splitlines()
    return [n for n in names if n.endswith(suffix)]


def show(path: Path, rev: str, file: str) -> str:
    return git(path, "show", f"{rev}:{file}")


def show_many(path: Path, rev: str, files: Sequence[str]) -> dict[str, str]:
    """The text of many files of commit ``rev`` in one ``git cat-file --batch`` call."""
    if not files:
        return {}
    request = "".join(f"{rev}:{name}\n" for name in files).encode()
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=path,
        input=request,
        capture_output=True,
        env={**os.environ, **_QUIET_ENV},
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(["cat-file", "--batch"], proc.returncode, proc.stderr.decode("replace"))
    out, pos, texts = proc.stdout, 0, {}
    for name in files:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] == b"missing":
            raise GitError(["cat-file", name], 1, f"{rev}:{name} is missing")
        size = int(header[2])
        texts[name] = out[pos : pos + size].decode("utf-8")
        pos += size + 1
    return texts


def is_ancestor(path: Path, older: str, newer: str) -> bool:
    try:
        git(path, "merge-base", "--is-ancestor", older, newer)
    except GitError as exc:
        if exc.returncode == 1:
            return False
        raise
    return True
