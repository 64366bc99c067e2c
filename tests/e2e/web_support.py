"""A real Forløp server for the browser tests: `forlop demo` then `forlop serve` as subprocesses on SQLite, and
Debian's Chromium driven by Playwright (never a downloaded browser).

Screenshots go to ``$FORLOP_TEST_ARTIFACTS`` (default ``artifacts/`` in the repository) as test artifacts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.suite import processes

ROOT = Path(__file__).resolve().parents[2]
FORLOP = Path(sys.executable).with_name("forlop")
CHROMIUM = os.environ.get("FORLOP_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("FORLOP_TEST_ARTIFACTS", ROOT / "artifacts"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def demo_server(workdir: Path, *, cases: int = 60, prepare: Callable[[str], object] | None = None,
                env: dict[str, str] | None = None) -> Iterator[str]:
    """A seeded synthetic demo served on a free port; yields its base URL and stops it afterwards. ``prepare`` is
    given the database URL after the demo is seeded and before the server starts (a test's own cases); ``env`` adds
    settings of the server's own (``FORLOP_PUBLIC_URL`` is its address)."""
    url = f"sqlite:///{workdir / 'web.db'}"
    extra = env or {}
    env = {**os.environ, "FORLOP_ENV": "demo", "FORLOP_SCHEDULER": "off", "FORLOP_DATABASE_URL": url}
    subprocess.run([str(FORLOP), "demo", "--cases", str(cases), "--seed", "7"], env=env, check=True,
                   capture_output=True, timeout=600)
    if prepare is not None:
        prepare(url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (workdir / "server.log").open("wb")
    server = processes.spawn([str(FORLOP), "serve", "--port", str(port)],
                             env={**env, "FORLOP_PUBLIC_URL": base, **extra}, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"the server stopped: {(workdir / 'server.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        processes.end(server, grace=20)
        log.close()
