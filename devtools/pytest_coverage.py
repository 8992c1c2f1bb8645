"""The pytest plugin behind `make test`'s coverage (`pytest -p devtools.pytest_coverage`).

- The short report: one row per top-level package or module, then one line with the total,
  read from the JSON report pytest-cov wrote (`--cov-report=json`) and printed in pytest's
  terminal summary, so that pytest's own closing line ("N passed in ...") stays the last one.
  `python -m devtools.pytest_coverage [var/coverage/coverage.json]` prints it again.
- Subprocesses: coverage's `patch = ["subprocess"]` hands its settings to every Python
  process the tests start. Those processes trace greenlets too (the gateway runs on gevent),
  while the test process itself, which runs none, traces threads only: greenlet-aware
  tracing made the whole suite about a fifth slower.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DEFAULT_REPORT = Path("var/coverage/coverage.json")
SUBPROCESS_CONCURRENCY = ("thread", "gevent")


@dataclass
class Counts:
    statements: int = 0
    missing: int = 0
    branches: int = 0
    missing_branches: int = 0

    def add(self, summary: dict[str, Any]) -> None:
        self.statements += summary["num_statements"]
        self.missing += summary["missing_lines"]
        self.branches += summary.get("num_branches", 0)
        self.missing_branches += summary.get("missing_branches", 0)

    @property
    def percent(self) -> float:
        total = self.statements + self.branches
        if total == 0:
            return 100.0
        return 100.0 * (total - self.missing - self.missing_branches) / total


def group_name(path: str) -> str:
    """`api/sockets/guard.py` -> `api`; `gateway.py` -> `gateway.py`."""
    parts = Path(path).parts
    return parts[0] if len(parts) > 1 else parts[-1]


def by_group(report: dict[str, Any]) -> dict[str, Counts]:
    groups: dict[str, Counts] = {}
    for path, file_report in report["files"].items():
        groups.setdefault(group_name(path), Counts()).add(file_report["summary"])
    return dict(sorted(groups.items()))


def total_of(report: dict[str, Any]) -> Counts:
    counts = Counts()
    counts.add(report["totals"])
    return counts


def total_line(percent: float) -> str:
    return f"coverage: {percent:.1f}% of branches and lines"


def render(report: dict[str, Any], html_dir: str | None = None) -> list[str]:
    where = f" (per file: {html_dir}/index.html)" if html_dir else ""
    lines = [
        f"{'package':<14}{'lines':>7}{'missed':>8}{'branches':>10}{'missed':>8}{'cover':>8}"
        f"{where}",
    ]
    for name, counts in by_group(report).items():
        lines.append(
            f"{name:<14}{counts.statements:>7}{counts.missing:>8}{counts.branches:>10}"
            f"{counts.missing_branches:>8}{counts.percent:>7.1f}%"
        )
    lines.append(total_line(total_of(report).percent))
    return lines


def print_report(path: Path, write: Callable[[str], object], html_dir: str | None) -> bool:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    for line in render(report, html_dir):
        write(line)
    return True


def subprocesses_trace_greenlets() -> bool:
    """Add gevent to the concurrency of the settings subprocesses get. True if done."""
    serialized = os.environ.get("COVERAGE_PROCESS_CONFIG")
    if not serialized:  # coverage off, or not measuring subprocesses
        return False
    from coverage.config import CoverageConfig

    config = CoverageConfig.deserialize(serialized)
    config.concurrency = sorted({*config.concurrency, *SUBPROCESS_CONCURRENCY})
    os.environ["COVERAGE_PROCESS_CONFIG"] = config.serialize()
    return True


def pytest_sessionstart(session: Any) -> None:
    # pytest-cov started coverage (and so set COVERAGE_PROCESS_CONFIG) before the session.
    subprocesses_trace_greenlets()


@pytest.hookimpl(trylast=True)  # after pytest-cov's own lines
def pytest_terminal_summary(terminalreporter: Any, config: Any) -> None:
    plugin = config.pluginmanager.getplugin("_cov")
    total = getattr(plugin, "cov_total", None)
    if total is None:  # coverage off (--no-cov, no --cov) or no report was made
        return
    controller = getattr(plugin, "cov_controller", None)
    cov = getattr(controller, "cov", None)
    cov_report = getattr(controller, "cov_report", None) or {}
    json_path = html_dir = None
    if cov is not None and "json" in cov_report:
        json_path = Path(cov_report["json"] or cov.config.json_output)
    if cov is not None and "html" in cov_report:
        html_dir = cov_report["html"] or cov.config.html_dir
    write = terminalreporter.write_line
    if json_path is None or not print_report(json_path, write, html_dir):
        write(total_line(total))


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT_REPORT
    if not print_report(path, print, None):
        print(f"no coverage report at {path}: run `make test` first", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
