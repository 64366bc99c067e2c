"""Every process the suite starts is started in a session of its own and ended with its whole process group, and
the run fails if any of them outlives it.

Each process inherits ``PYTEST_FORLOP_RUN`` (a token per run) from the suite's environment; at the end of the run the
controller looks for live processes carrying the token, ends them and fails the run, so a leak cannot pass unseen
(uvicorn's workers outliving a killed supervisor, a PostgreSQL cluster left running, a browser).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

RUN = "PYTEST_FORLOP_RUN"  # not FORLOP_*: the helpers that start `forlop` drop those from its environment
_groups: set[int] = set()  # the process groups this test process started and has not ended yet


def mark_run() -> None:
    """Give this run its token (the controller does, before it starts any worker)."""
    os.environ.setdefault(RUN, uuid.uuid4().hex)


def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` in a new session (its own process group), remembered until ``end``."""
    proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
    _groups.add(proc.pid)
    return proc


def end(proc: subprocess.Popen[Any], *, grace: float = 0.0, timeout: float = 10.0) -> None:
    """End ``proc`` and every process of its group (workers, helpers); with ``grace``, SIGTERM first."""
    if grace and proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    _groups.discard(proc.pid)


def end_all() -> None:
    """End every group this process started and did not end (a test that failed before its ``finally``)."""
    for pgid in list(_groups):
        _signal_group(pgid, signal.SIGKILL)
    _groups.clear()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def leftovers(*, wait: float = 10.0) -> list[str]:
    """The live processes of this run other than this one, after up to ``wait`` seconds for them to go."""
    token = os.environ.get(RUN)
    if not token:
        return []
    deadline = time.monotonic() + wait
    while True:
        found = _marked(token.encode())
        if not found or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    return [f"pid {pid}: {cmdline}" for pid, cmdline in found]


def kill_leftovers() -> None:
    """End every live process of this run but this one: its group if it has one of its own, else itself."""
    token = os.environ.get(RUN)
    if not token:
        return
    own = os.getpgid(0)
    for pid, _ in _marked(token.encode()):
        try:
            pgid = os.getpgid(pid)
            os.killpg(pgid, signal.SIGKILL) if pgid != own else os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# -- what /proc says --------------------------------------------------------------------------------------------


def _live() -> Iterator[tuple[int, int, int]]:
    """(pid, parent, process group) of every live process; a zombie holds nothing and is left out (its parent,
    or init, reaps it in its own time)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                state, parent, group = f.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if state != "Z":
            yield int(entry), int(parent), int(group)


def alive(pid: int, *, within: float = 0.0) -> bool:
    """Whether ``pid`` is a live process; with ``within``, whether it still is after up to that many seconds."""
    deadline = time.monotonic() + within
    while any(p == pid for p, _, _ in _live()):
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)
    return False


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    return sorted(p for p, parent, _ in _live() if parent == pid)


def group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    return sorted(p for p, _, g in _live() if g == pgid)


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _marked(token: bytes) -> list[tuple[int, str]]:
    found = []
    for pid, _, _ in _live():
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"{RUN}=".encode() + token not in f.read().split(b"\0"):
                    continue
        except OSError:
            continue
        found.append((pid, cmdline(pid)[:200]))
    return found
