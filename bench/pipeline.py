"""The push pipeline benchmark: from the send API to the stand-ins' acknowledgement.

100,000 notifications over 10,000 users with 1 to 3 devices each across APNs, FCM and
Expo, the stand-ins answering after 30 ms; 2 worker processes. Reports sustained
deliveries per second, p50/p99 latency from created to acknowledged, latency at an offered
rate, worker memory over the run, and, in the same run, the baseline a first RQ
implementation would be (one job per notification, a synchronous provider call in it).

    python -m bench.pipeline [--notifications 100000] [--users 10000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import redis
import requests
from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from core.catalog import Platform, Provider
from core.device_tokens import TokenCipher
from devtools.embedded import free_port
from models.db import normalize_database_url
from tests.services import (
    create_database,
    drop_database,
    resolve_postgres_admin_url,
    resolve_redis_url,
)

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_PLATFORM = {
    Provider.APNS: Platform.IOS,
    Provider.FCM: Platform.ANDROID,
    Provider.EXPO: Platform.IOS,
}
TERMINAL = ("sent", "partially_sent", "failed", "suppressed", "expired")


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


@dataclass
class Stack:
    env: dict[str, str]
    api_url: str
    engine: Any
    redis: redis.Redis
    workers: list[subprocess.Popen]
    token: str
    standins_pid: int

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(query), params))

    def reset_rows(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                text("TRUNCATE notification_deliveries, notification_queue, notification_sends")
            )


@contextmanager
def services(delay: float, postgres: str) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A throwaway database, a Redis db of our own, and the stand-ins in their own process.

    `postgres`: "machine" (the local server, else an embedded one) or "embedded" (a fresh
    PostgreSQL 16 from the pgserver wheel with its stock settings, autovacuum on, as a
    production server runs: for long runs, where vacuum decides the outcome)."""
    if postgres == "embedded":
        from devtools.embedded import start_postgres

        data_dir = Path(tempfile.mkdtemp(prefix="pulse-bench-pg-"))
        server = start_postgres(data_dir)
        admin_url = server.admin_url

        def stop_pg() -> None:
            server.stop()
            shutil.rmtree(data_dir, ignore_errors=True)

        say(f"embedded PostgreSQL on port {server.port} (autovacuum on)")
    else:
        admin_url, stop_pg = resolve_postgres_admin_url()
    redis_server, stop_redis = resolve_redis_url()
    name = f"pulse_bench_{secrets.token_hex(4)}"
    database_url = create_database(admin_url, name)
    base = redis_server.rsplit("/", 1)[0]
    redis_url = f"{base}/14"
    redis.Redis.from_url(redis_url).flushdb()
    standins = subprocess.Popen(
        [sys.executable, "-m", "bench.standins", str(delay)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        provider_env = json.loads(standins.stdout.readline())
        provider_env["BENCH_STANDINS_PID"] = str(standins.pid)
        yield database_url, redis_url, provider_env
    finally:
        standins.terminate()
        standins.wait(timeout=10)
        drop_database(admin_url, name)
        redis.Redis.from_url(redis_url).flushdb()
        for stop in (stop_pg, stop_redis):
            if stop:
                stop()


def start_workers(env: dict[str, str], count: int) -> list[subprocess.Popen]:
    logs = Path(env.get("BENCH_LOG_DIR", "/tmp"))
    return [
        subprocess.Popen(
            # Pulse's worker, which may also run the baseline's job.
            [sys.executable, "-m", "bench.worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(logs / f"pulse-bench-worker-{index}.log").open("w"),
        )
        for index in range(count)
    ]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def without_rules(stack: Stack, user_ids: list[str], notifications: int) -> dict[str, Any]:
    """The same throughput run with DELIVERY_RULES=false workers, for the rules' cost."""
    stop(stack.workers[1:])
    stack.workers[1:] = start_workers(
        {**stack.env, "DELIVERY_RULES": "false"}, len(stack.workers) - 1
    )
    try:
        return throughput(stack, user_ids, notifications)
    finally:
        stop(stack.workers[1:])
        stack.workers[1:] = start_workers(stack.env, len(stack.workers) - 1)


def start_processes(env: dict[str, str], workers: int, port: int) -> list[subprocess.Popen]:
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "8",
            "--worker-class",
            "gthread",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    fleet = start_workers(env, workers)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return [api, *fleet]
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not become ready")


def parse_mix(text: str) -> dict[Provider, float]:
    """"apns:fcm:expo" weights, e.g. "2:2:1"."""
    weights = [float(w) for w in text.split(":")]
    if len(weights) != 3 or min(weights) < 0 or sum(weights) <= 0:
        raise argparse.ArgumentTypeError("--mix takes three weights apns:fcm:expo, e.g. 2:2:1")
    return dict(zip((Provider.APNS, Provider.FCM, Provider.EXPO), weights, strict=True))


def seed(
    stack: Stack, users: int, settings_env: dict[str, str], mix: dict[Provider, float]
) -> dict[str, int]:
    """Users with 1 to 3 devices each, across the three providers in the proportions of
    `mix`; returns the device count per provider."""
    cipher = TokenCipher(
        tuple(settings_env["TOKEN_ENCRYPTION_KEY"].split(",")), settings_env["TOKEN_HASH_KEY"]
    )
    rng = random.Random(7)
    user_rows, token_rows = [], []
    for index in range(users):
        user_id = f"bench-user-{index:06d}"
        user_rows.append({"id": user_id})
        for device in range(rng.randint(1, 3)):
            provider = rng.choices(list(mix), weights=list(mix.values()))[0]
            serial = index * 4 + device
            token = {
                Provider.APNS: f"{serial:064x}",
                Provider.FCM: f"bench-fcm-{serial:08d}-" + "f" * 120,
                Provider.EXPO: f"ExponentPushToken[bench-expo-{serial:010d}]",
            }[provider]
            token_rows.append(
                {
                    "id": uuid.uuid4(),
                    "user_id": user_id,
                    "token_hash": cipher.lookup_hash(token),
                    "token_ciphertext": cipher.encrypt(token),
                    "platform": PROVIDER_PLATFORM[provider].value,
                    "provider": provider.value,
                }
            )
    with stack.engine.begin() as connection:
        connection.execute(text("INSERT INTO users (id) VALUES (:id)"), user_rows)
        connection.execute(
            text(
                "INSERT INTO push_tokens"
                " (id, user_id, token_hash, token_ciphertext, platform, provider)"
                " VALUES (:id, :user_id, :token_hash, :token_ciphertext, :platform, :provider)"
            ),
            token_rows,
        )
    return {p.value: sum(t["provider"] == p.value for t in token_rows) for p in mix}


def send(stack: Stack, user_ids: list[str]) -> None:
    """A message in a conversation of its own for each user: every rule runs (settings,
    presence, quiet hours, a batch window opened in Redis, both caps taken), none holds it."""
    conversation = uuid.uuid4().hex[:12]
    response = requests.post(
        f"{stack.api_url}/api/v1/notifications/send",
        json={
            "notification_type": "new_message",
            "target": {"user_ids": user_ids},
            "data": {"conversation_id": conversation, "sender_name": "Bench"},
        },
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=120,
    )
    response.raise_for_status()


class MemorySampler(threading.Thread):
    """RSS of the worker processes, twice a second."""

    def __init__(self, processes: list[subprocess.Popen]):
        super().__init__(daemon=True)
        self.processes = [psutil.Process(p.pid) for p in processes]
        self.samples: list[list[int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append([p.memory_info().rss for p in self.processes])
            self.stopped.wait(0.5)

    def summary(self) -> dict[str, float]:
        per_worker = list(zip(*self.samples, strict=True))
        mib = 1024 * 1024
        warm = len(per_worker[0]) // 4  # caches and pools fill in the first quarter
        return {
            "start_mib": max(s[0] for s in per_worker) / mib,
            "after_first_quarter_mib": max(s[warm] for s in per_worker) / mib,
            "peak_mib": max(max(s) for s in per_worker) / mib,
            "end_mib": max(s[-1] for s in per_worker) / mib,
            "tenths_mib": [
                round(max(s[i * (len(s) - 1) // 10] for s in per_worker) / mib, 1)
                for i in range(11)
            ],
        }


def service_pids(*names: str) -> list[int]:
    """The machine's PostgreSQL or Redis server processes (shared services: nothing else
    should be using them during a run): the parents only, their children are counted."""
    found = {p.pid: p for p in psutil.process_iter(["name", "ppid"]) if p.info["name"] in names}
    return [pid for pid, p in found.items() if p.info["ppid"] not in found]


def cpu_seconds(processes: dict[str, list[int]]) -> dict[str, float]:
    """CPU time (user + system) used so far by each group of processes and their children,
    and by the whole machine ("machine": every core's busy time)."""
    machine = psutil.cpu_times()
    totals = {"machine": sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)}
    for name, pids in processes.items():
        total = 0.0
        for pid in pids:
            try:
                process = psutil.Process(pid)
                for member in [process, *process.children(recursive=True)]:
                    times = member.cpu_times()
                    total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        totals[name] = total
    return totals


def wait_until_done(stack: Stack, expected: int, timeout: float) -> float:
    """Wait for every notification to reach a terminal status; returns when the last one
    got there (its updated_at, as a time.time() value). Polls once a second: counting
    statuses scans the table, and that scan must not weigh on what is measured."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [(done, last)] = stack.sql(
            "SELECT count(*), extract(epoch FROM max(updated_at)) FROM notification_queue"
            " WHERE status = ANY(:terminal)",
            terminal=list(TERMINAL),
        )
        if done >= expected:
            return float(last)
        time.sleep(1.0)
    statuses = stack.sql(
        "SELECT status, reason, count(*) FROM notification_queue GROUP BY status, reason"
    )
    raise RuntimeError(
        f"only part of the {expected} notifications finished in {timeout}s: {statuses}"
    )


def percentiles(stack: Stack) -> dict[str, float]:
    rows = stack.sql(
        "SELECT extract(epoch FROM (sent_at - created_at)) FROM notification_queue"
        " WHERE sent_at IS NOT NULL"
    )
    latencies = sorted(float(r[0]) for r in rows)
    if not latencies:
        return {"p50_s": float("nan"), "p99_s": float("nan")}
    return {
        "p50_s": statistics.median(latencies),
        "p99_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def retried(stack: Stack) -> dict[str, int]:
    """Attempts that did not go through, by provider and error (a retry follows each)."""
    rows = stack.sql(
        "SELECT provider, error_reason, count(*) FROM notification_deliveries"
        " WHERE status <> 'sent' GROUP BY provider, error_reason"
    )
    return {f"{provider}:{error}": count for provider, error, count in rows}


def delivered(stack: Stack) -> int:
    [(count,)] = stack.sql("SELECT count(*) FROM notification_deliveries WHERE status = 'sent'")
    return count


def throughput(stack: Stack, user_ids: list[str], notifications: int) -> dict[str, Any]:
    """Offer everything at once (10,000 users per request) and measure sustained rate."""
    stack.reset_rows()
    rounds = max(1, notifications // len(user_ids))
    sampler = MemorySampler(stack.workers[1:])
    sampler.start()
    groups = {
        "api": [stack.workers[0].pid],
        "workers": [p.pid for p in stack.workers[1:]],
        "standins": [stack.standins_pid],
        "postgres": service_pids("postgres"),
        "redis": service_pids("redis-server"),
    }
    cpu_before = cpu_seconds(groups)
    started = time.time()
    for _ in range(rounds):
        send(stack, user_ids)
    finished = wait_until_done(
        stack, rounds * len(user_ids), timeout=float(os.environ.get("BENCH_TIMEOUT", 1800))
    )
    sampler.stopped.set()
    sampler.join()
    elapsed = finished - started
    count = delivered(stack)
    cpu_after = cpu_seconds(groups)
    return {
        "cpu_ms_per_delivery": {
            name: round((cpu_after[name] - cpu_before[name]) * 1000 / max(count, 1), 3)
            for name in [*groups, "machine"]
        },
        "machine_busy_cores": round((cpu_after["machine"] - cpu_before["machine"]) / elapsed, 2),
        "notifications": rounds * len(user_ids),
        "deliveries": count,
        "elapsed_s": elapsed,
        "deliveries_per_s": count / elapsed,
        **percentiles(stack),
        "not_sent_attempts": retried(stack),
        "worker_memory": sampler.summary(),
    }


def offered_rate(
    stack: Stack, user_ids: list[str], per_second: int, seconds: int
) -> dict[str, Any]:
    """Offer `per_second` notifications a second in 10 batches a second; latency under load."""
    stack.reset_rows()
    batch = max(1, per_second // 10)
    rng = random.Random(11)
    started = time.time()
    sent = 0
    for tick in range(seconds * 10):
        send(stack, rng.sample(user_ids, batch))
        sent += batch
        pause = started + (tick + 1) / 10 - time.time()
        if pause > 0:
            time.sleep(pause)
    wait_until_done(stack, sent, timeout=600)
    return {
        "offered_per_s": per_second,
        "seconds": seconds,
        "notifications": sent,
        "deliveries_offered_per_s": delivered(stack) / seconds,
        **percentiles(stack),
        "not_sent_attempts": retried(stack),
    }


def baseline(stack: Stack, user_ids: list[str], notifications: int) -> dict[str, Any]:
    """One RQ job per notification with a synchronous provider call per device."""
    from rq import Queue

    from bench.baseline import deliver_one
    from core.catalog import Priority
    from intake.queues import queue as pulse_queue

    stack.reset_rows()
    chosen = user_ids[:notifications]
    started = time.time()
    response = requests.post(
        f"{stack.api_url}/api/v1/notifications/send",
        json={
            "notification_type": "new_match",
            "target": {"user_ids": chosen},
            "scheduled_for": "2100-01-01T00:00:00+00:00",
        },
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=120,
    )
    ids = response.json()["data"]["notification_ids"]
    # Scheduled far ahead, and left so: the pipeline's jobs and the scheduler's sweep take
    # only due rows, the baseline's job takes its row whatever its time.
    queue = pulse_queue(Priority.NORMAL, stack.redis)
    queue.enqueue_many([Queue.prepare_data(deliver_one, args=(i,), result_ttl=0) for i in ids])
    finished = wait_until_done(stack, len(ids), timeout=1800)
    elapsed = finished - started
    count = delivered(stack)
    return {
        "notifications": len(ids),
        "deliveries": count,
        "elapsed_s": elapsed,
        "deliveries_per_s": count / elapsed,
        **percentiles(stack),
    }


def machine() -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "load_before": f"{load1:.2f} (1 min), {load5:.2f} (5 min)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notifications", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.030, help="stand-in answer delay, seconds")
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default="1:1:1",
        help="devices per provider, apns:fcm:expo weights (default 1:1:1)",
    )
    parser.add_argument(
        "--offered",
        default="500,1000",
        help="notifications a second offered, one run per rate (500 is ~1,000 deliveries/s)",
    )
    parser.add_argument("--offered-seconds", type=int, default=30)
    parser.add_argument("--baseline-notifications", type=int, default=1_000)
    parser.add_argument("--scenarios", default="baseline,pipeline,pipeline_without_rules,offered")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--postgres",
        choices=("machine", "embedded"),
        default="machine",
        help="the machine's PostgreSQL, or a fresh embedded one with autovacuum on",
    )
    arguments = parser.parse_args()
    results: dict[str, Any] = {"machine": machine()}
    results["postgres"] = arguments.postgres
    with services(arguments.delay, arguments.postgres) as (database_url, redis_url, provider_env):
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes.update(url=database_url, configure_logging=False)
        command.upgrade(config, "head")
        env = {
            **os.environ,
            **provider_env,
            "PULSE_ENV": "production",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "JWT_SECRET": secrets.token_urlsafe(48),
            "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "TOKEN_HASH_KEY": secrets.token_urlsafe(24),
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "EXPO_RATE_PER_SECOND": "100000",  # the stand-in has no limit; measure our code
            # The rules run but never bind: the bench measures their cost, not their effect.
            "FREQUENCY_CAP_PER_DAY": "1000000",
            "FREQUENCY_CAP_PER_TYPE_HOUR": "1000000",
            "QUIET_HOURS_DEFAULT_START": "00:00",
            "QUIET_HOURS_DEFAULT_END": "00:00",
        }
        from api.auth import mint_token
        from core.catalog import Role
        from core.config import load_settings

        port = free_port()
        processes = start_processes(env, arguments.workers, port)
        # The scheduler runs the outbox sweep: retried rows come back through it, as in
        # production.
        scheduler = subprocess.Popen(
            [sys.executable, "scheduler.py"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            stack = Stack(
                env=env,
                api_url=f"http://127.0.0.1:{port}",
                engine=create_engine(normalize_database_url(database_url)),
                redis=redis.Redis.from_url(redis_url),
                workers=processes,
                token=mint_token(load_settings(env), "bench", Role.SERVICE),
                standins_pid=int(provider_env["BENCH_STANDINS_PID"]),
            )
            devices = seed(stack, arguments.users, env, arguments.mix)
            say(f"seeded {arguments.users} users with devices {devices}")
            results["devices"] = devices
            user_ids = [f"bench-user-{i:06d}" for i in range(arguments.users)]
            scenarios = {
                "baseline": lambda: baseline(stack, user_ids, arguments.baseline_notifications),
                "pipeline": lambda: throughput(stack, user_ids, arguments.notifications),
                "offered": lambda: [
                    offered_rate(stack, user_ids, int(rate), arguments.offered_seconds)
                    for rate in arguments.offered.split(",")
                ],
                "pipeline_without_rules": lambda: without_rules(
                    stack, user_ids, arguments.notifications
                ),
            }
            for name in arguments.scenarios.split(","):
                results[name] = scenarios[name]()
                say(f"{name}: {results[name]}")
        finally:
            stop([scheduler, *(stack.workers if "stack" in locals() else processes)])
    if "pipeline" in results and "pipeline_without_rules" in results:
        results["rules_cost"] = 1 - (
            results["pipeline"]["deliveries_per_s"]
            / results["pipeline_without_rules"]["deliveries_per_s"]
        )
    if "pipeline" in results and "baseline" in results:
        results["ratio_pipeline_to_baseline"] = (
            results["pipeline"]["deliveries_per_s"] / results["baseline"]["deliveries_per_s"]
        )
    print(json.dumps(results, indent=2, default=str))
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
