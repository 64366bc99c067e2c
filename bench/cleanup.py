"""Leave nothing behind, however a benchmark ends: finished, failed, Ctrl-C or SIGTERM.

Every benchmark runs its ``main`` through ``run``. SIGTERM then stops it as Ctrl-C does (a KeyboardInterrupt in the
main thread), so every ``finally`` and ``with`` block of the run runs; and what the run made outside its own
process is registered with ``Made`` as it is made (PostgreSQL databases, temporary folders, server processes) and
removed at the end, newest first, even where the run's own clean-up was cut short.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.pool import NullPool


class Made:
    """What a run has made outside its own process, undone by ``remove``."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], None]]] = []

    def temp_dir(self, prefix: str, parent: str | Path | None = None) -> Path:
        """A new temporary folder, removed with everything in it at the end."""
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        self._undo.append((f"folder {path}", lambda: shutil.rmtree(path, ignore_errors=True)))
        return path

    def database(self, admin_url: str, name: str, *, template: str | None = None) -> str:
        """A new PostgreSQL database (one of that name left by an earlier run is dropped first), dropped at the
        end; its URL. It is registered before it is created, so that a CREATE cut short is dropped too."""
        self.drop_at_end(admin_url, name)
        with _admin(admin_url) as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_at_end(self, admin_url: str, name: str) -> None:
        """Drop the database ``name`` at the end (one this run did not create, such as one it reuses)."""
        self._undo.append((f"database {name}", lambda: _drop(admin_url, name)))

    def keep(self, name: str) -> None:
        """Leave the database ``name`` in place after all (a finished run asked to keep it)."""
        self._undo = [(what, undo) for what, undo in self._undo if what != f"database {name}"]

    def spawn(self, argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        """A child process in a session of its own, so that a Ctrl-C in the terminal reaches only the benchmark,
        which stops the child as it means to; the child's whole process group (a server's workers too) is killed
        at the end."""
        proc = subprocess.Popen(argv, start_new_session=True, **popen)
        self._undo.append((f"process group {proc.pid}", lambda: _kill_group(proc)))
        return proc

    def remove(self) -> None:
        """Undo everything, newest first (the servers before the databases they use). A second Ctrl-C or SIGTERM
        meanwhile is ignored, so that nothing is left half removed; an undo that fails is reported, and the others
        still run."""
        held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while self._undo:
                what, undo = self._undo.pop()
                try:
                    undo()
                except Exception as exc:  # noqa: BLE001 - the rest must still be removed
                    print(f"could not remove {what}: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            for sig, handler in held.items():
                signal.signal(sig, handler)


def run(main: Callable[[Made], int | None]) -> NoReturn:
    """Run a benchmark's ``main(made)`` and exit with its code. A run stopped by Ctrl-C or SIGTERM says so and
    exits 128 + the signal's number (130, 143), without a traceback, after everything it made is removed."""
    received = [signal.SIGINT]

    def as_ctrl_c(signum: int, _frame: object) -> None:
        # Raise SIGINT rather than KeyboardInterrupt here: whoever handles Ctrl-C at this moment then handles it
        # as theirs (asyncio.run, for one, cancels its task and raises KeyboardInterrupt once that task is done).
        received[0] = signal.Signals(signum)
        signal.raise_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (`cmd &`)
    signal.signal(signal.SIGTERM, as_ctrl_c)
    made = Made()
    try:
        code = main(made)
    except KeyboardInterrupt:
        print(f"\nstopped by {received[0].name}: removing what the run made", file=sys.stderr, flush=True)
        code = 128 + received[0]
    finally:
        made.remove()
    sys.exit(code)


def _admin(admin_url: str) -> sa.Connection:
    return sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool).connect()


def _drop(admin_url: str, name: str) -> None:
    with _admin(admin_url) as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already (the benchmark stopped its server itself)
    proc.wait(timeout=30)
