"""A Procfile line run the way `make run` runs it (honcho: `sh -c`, with the environment,
the venv's bin/ first on PATH), for tests of the line itself; here rq-dashboard's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from devtools.embedded import free_port
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        process, _, command = line.partition(":")
        if process.strip() == name:
            return command.strip()
    raise KeyError(f"no {name!r} line in the Procfile")


class Dashboard:
    """The Procfile's `dashboard` process (rq-dashboard) on a free port."""

    def __init__(self, env: Mapping[str, str], log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"dashboard-{self.port}.log"
        venv_bin = str(Path(sys.executable).parent)
        self.proc = subprocess.Popen(
            ["sh", "-c", procfile_command("dashboard")],
            cwd=ROOT,
            env={
                **os.environ,
                **env,
                "HOST": "127.0.0.1",
                "RQ_DASHBOARD_PORT": str(self.port),
                "PATH": os.pathsep.join([venv_bin, os.environ.get("PATH", os.defpath)]),
            },
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(self._answers, 30, message=lambda: f"rq-dashboard:\n{self.output()}")
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"rq-dashboard exited:\n{self.output()}")
        try:
            return requests.get(f"{self.url}/0/data/queues.json", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def get(self, path: str) -> Any:
        return requests.get(f"{self.url}/0/data/{path}", timeout=10)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
