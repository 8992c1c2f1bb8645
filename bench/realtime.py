"""The real-time gateway benchmark: 2,000 concurrent Socket.IO clients (in client processes
apart from the gateways), 1,000 matched pairs. Measures p50/p99 of typing sender ->
receiver, presence change -> watcher and worker emit -> client (plus publish -> client end
to end), counts lost messages, the gateways' memory per connection, and, in the same run,
a raw Redis pub/sub round trip as the floor.

    python -m bench.realtime [--clients 2000] [--gateways 1] [--client-processes 4]
                             [--threading] [--seconds 10]

Starts its own gateway(s) and RQ worker on a scratch database and Redis db; stops them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
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

from api.auth import mint_token
from core.config import load_settings
from devtools.embedded import free_port
from models.db import normalize_database_url
from tests.services import (
    create_database,
    drop_database,
    resolve_postgres_admin_url,
    resolve_redis_url,
)

ROOT = Path(__file__).resolve().parent.parent
TARGET_EVENT_P99_MS = 35.0
TARGET_PRESENCE_P99_MS = 75.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 0.50), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "mean_ms": round(statistics.fmean(values), 2) if values else float("nan"),
        "max_ms": round(max(values), 2) if values else float("nan"),
    }


@contextmanager
def scratch_services():
    """A scratch database migrated to head, and a Redis db nobody else holds."""
    admin_url, stop_pg = resolve_postgres_admin_url()
    redis_server, stop_redis = resolve_redis_url()
    name = f"pulse_bench_rt_{secrets.token_hex(4)}"
    database_url = create_database(admin_url, name)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["url"] = database_url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
    base = redis_server.rsplit("/", 1)[0] if redis_server.count("/") > 2 else redis_server
    locks = redis.Redis.from_url(f"{base}/0")
    token = secrets.token_hex(8)
    for number in range(15, 0, -1):
        if locks.set(f"pulse-test-lock:{number}", token, nx=True, ex=3600):
            break
    else:
        raise SystemExit("every Redis db 1-15 is held by a test run")
    redis_url = f"{base}/{number}"
    redis.Redis.from_url(redis_url).flushdb()
    try:
        yield database_url, redis_url
    finally:
        redis.Redis.from_url(redis_url).flushdb()
        locks.delete(f"pulse-test-lock:{number}")
        drop_database(admin_url, name)
        for stop in (stop_pg, stop_redis):
            if stop:
                stop()


def make_pairs(database_url: str, count: int) -> list[tuple[str, str, str]]:
    """`count` matched pairs (a, b, conversation id), written straight to the tables."""
    pairs = [(f"bench-a{i:05d}", f"bench-b{i:05d}", f"bench-conv-{i:05d}") for i in range(count)]
    engine = create_engine(normalize_database_url(database_url))
    with engine.begin() as connection:
        users = [{"id": u} for a, b, _ in pairs for u in (a, b)]
        connection.execute(text("INSERT INTO users (id) VALUES (:id)"), users)
        connection.execute(
            text("INSERT INTO matches (user_a_id, user_b_id, conversation_id) VALUES (:a, :b, :c)"),
            [{"a": a, "b": b, "c": c} for a, b, c in pairs],
        )
    engine.dispose()
    return pairs


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gateway exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gateway did not start:\n{log.read_text()[-3000:]}")


def redis_floor(redis_url: str, rate: float, seconds: float) -> list[float]:
    """Raw pub/sub round trip on the same Redis: publish -> a subscriber's receipt."""
    channel = f"bench-floor-{secrets.token_hex(4)}"
    subscriber = redis.Redis.from_url(redis_url).pubsub()
    subscriber.subscribe(channel)
    subscriber.get_message(timeout=1)
    samples: list[float] = []
    total = int(rate * seconds)

    def listen() -> None:
        while len(samples) < total:
            message = subscriber.get_message(timeout=2)
            if message is None:
                return
            if message["type"] == "message":
                samples.append((time.perf_counter() - float(message["data"])) * 1000)

    listener = threading.Thread(target=listen)
    listener.start()
    publisher = redis.Redis.from_url(redis_url)
    begin = time.perf_counter()
    for n in range(total):
        publisher.publish(channel, repr(time.perf_counter()))
        time.sleep(max(0.0, begin + (n + 1) / rate - time.perf_counter()))
    listener.join(10)
    subscriber.close()
    return samples


class ClientProcess:
    def __init__(self, index: int, pairs: list[dict[str, Any]], env: dict[str, str], logs: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.realtime_clients"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(logs / f"clients-{index}.log").open("wb"),
            text=True,
        )
        self.send({"pairs": pairs})

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("a client process died: see its log")
        return json.loads(line)


def run_phase(procs: list[ClientProcess], command: dict[str, Any]) -> dict[str, Any]:
    for proc in procs:
        proc.send(command)
    merged: dict[str, Any] = {"sent": 0, "counts": {}, "samples": {}}
    for proc in procs:
        part = proc.receive()
        merged["sent"] += part["sent"]
        for key, value in part["counts"].items():
            merged["counts"][key] = merged["counts"].get(key, 0) + value
        for key, values in part["samples"].items():
            merged["samples"].setdefault(key, []).extend(values)
    return merged


def publish_events(env: dict[str, str], targets: list[str], rate: float, seconds: float) -> int:
    """Backend events through intake.client.publish_event, as another service would."""
    os.environ.update(env)
    import runtime
    from intake.client import publish_event

    runtime.configure(load_settings(env))
    total = int(rate * seconds)
    begin = time.perf_counter()
    for n in range(total):
        publish_event(
            "boost_activated", targets[n % len(targets)], payload={"sent_at": time.time()}
        )
        time.sleep(max(0.0, begin + (n + 1) / rate - time.perf_counter()))
    return total


def wait_processed(database_url: str, count: int, timeout: float) -> None:
    """Until the worker has broadcast every event (or `timeout`): a slow worker is latency,
    not loss."""
    engine = create_engine(normalize_database_url(database_url))
    deadline = time.monotonic() + timeout
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            done = connection.execute(
                text("SELECT count(*) FROM realtime_events WHERE processed")
            ).scalar_one()
            connection.commit()
            if done >= count:
                break
            time.sleep(0.2)
    engine.dispose()


def rss(pids: list[int]) -> int:
    return sum(psutil.Process(pid).memory_info().rss for pid in pids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--gateways", type=int, default=1)
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--typing-rate", type=float, default=200.0, help="per second, in all")
    parser.add_argument("--presence-rate", type=float, default=100.0)
    parser.add_argument("--event-rate", type=float, default=100.0)
    parser.add_argument("--threading", action="store_true", help="threading gateways")
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args()
    pairs_count = arguments.clients // 2
    load_before = list(os.getloadavg())
    logs = ROOT / "var" / "bench-realtime"
    logs.mkdir(parents=True, exist_ok=True)

    with scratch_services() as (database_url, redis_url):
        env = {
            "PULSE_ENV": "production",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "JWT_SECRET": secrets.token_hex(32),
            "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "TOKEN_HASH_KEY": secrets.token_hex(16),
            "SOCKETIO_CHANNEL": f"pulse-bench-{secrets.token_hex(4)}",
            "LOG_LEVEL": "WARNING",
            "SOCKET_EVENT_RATE_PER_SECOND": "50",
        }
        settings = load_settings(env)
        print(f"preparing {pairs_count} matched pairs ...", flush=True)
        pairs = make_pairs(database_url, pairs_count)

        started: list[subprocess.Popen] = []
        try:
            gateways = []
            for index in range(arguments.gateways):
                port = free_port()
                args = [sys.executable, "gateway.py", "--port", str(port)]
                if arguments.threading:
                    args.append("--threading")
                log = logs / f"gateway-{index}.log"
                proc = start(args, env, log)
                started.append(proc)
                url = f"http://127.0.0.1:{port}"
                wait_healthy(url, proc, log)
                gateways.append((url, proc))
            worker = start([sys.executable, "-m", "workers.run"], env, logs / "worker.log")
            started.append(worker)
            gateway_pids = [proc.pid for _, proc in gateways]
            memory_before = rss(gateway_pids)

            specs = []
            for index, (a, b, conversation) in enumerate(pairs):
                specs.append(
                    {
                        "index": index,
                        "a": a,
                        "b": b,
                        "conversation": conversation,
                        "token_a": mint_token(settings, a),
                        "token_b": mint_token(settings, b),
                        # with several gateways, a and b sit on different ones
                        "url_a": gateways[index % len(gateways)][0],
                        "url_b": gateways[(index + 1) % len(gateways)][0],
                    }
                )
            count = arguments.client_processes
            connect_started = time.monotonic()
            procs = [ClientProcess(i, specs[i::count], env, logs) for i in range(count)]
            started.extend(proc.proc for proc in procs)
            connected = sum(proc.receive()["ready"] for proc in procs)
            connect_seconds = time.monotonic() - connect_started
            time.sleep(2)
            memory_after = rss(gateway_pids)
            live = redis.Redis.from_url(redis_url).zcard(
                f"{settings.storage.redis_key_prefix}rt:conns"
            )
            print(f"{connected} clients connected in {connect_seconds:.1f}s ({live} records)")

            seconds = arguments.seconds
            floor = redis_floor(redis_url, 200, seconds / 2)
            per_proc = {"seconds": seconds}
            typing = run_phase(
                procs, {"do": "typing", "rate": arguments.typing_rate / count, **per_proc}
            )
            presence = run_phase(
                procs, {"do": "presence", "rate": arguments.presence_rate / count, **per_proc}
            )
            for proc in procs:
                proc.send({"do": "listen"})
            published = publish_events(
                env, [pair[0] for pair in pairs], arguments.event_rate, seconds
            )
            wait_processed(database_url, published, timeout=60)
            for proc in procs:
                proc.send({"do": "report"})
            events: dict[str, Any] = {"counts": {}, "samples": {}}
            for proc in procs:
                part = proc.receive()
                for key, value in part["counts"].items():
                    events["counts"][key] = events["counts"].get(key, 0) + value
                for key, values in part["samples"].items():
                    events["samples"].setdefault(key, []).extend(values)
            cpu_gateways = sum(psutil.Process(pid).cpu_times().user for pid in gateway_pids)

            for proc in procs:
                proc.send({"do": "quit"})
            for proc in procs:
                proc.proc.wait(30)
            worker.terminate()
            for proc in [gateway for _, gateway in gateways] + [worker]:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        finally:
            for proc in started:
                if proc.poll() is None:
                    proc.kill()

    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_before_after": [load_before, list(os.getloadavg())],
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "setup": {
            "clients": connected,
            "client_processes": count,
            "gateways": len(gateways),
            "async_mode": "threading" if arguments.threading else "gevent",
            "connect_seconds": round(connect_seconds, 1),
            "rates_per_second": {
                "typing": arguments.typing_rate,
                "presence": arguments.presence_rate,
                "events": arguments.event_rate,
            },
            "seconds_per_phase": seconds,
            "gateway_cpu_user_seconds": round(cpu_gateways, 1),
        },
        "typing": {
            **summary(typing["samples"].get("typing", [])),
            "sent": typing["sent"],
            "lost": typing["sent"] - typing["counts"].get("typing", 0),
        },
        "presence": {
            **summary(presence["samples"].get("presence", [])),
            "sent": presence["sent"],
            "lost": presence["sent"] - presence["counts"].get("presence", 0),
        },
        "worker_emit": {
            **summary(events["samples"].get("event", [])),
            "sent": published,
            "lost": published - events["counts"].get("event", 0),
        },
        "publish_to_client": summary(events["samples"].get("e2e", [])),
        "redis_pubsub_floor": summary(floor),
        "memory": {
            "gateway_rss_before_mib": round(memory_before / 2**20, 1),
            "gateway_rss_after_mib": round(memory_after / 2**20, 1),
            "per_connection_kib": round(
                (memory_after - memory_before) / max(1, connected) / 1024, 1
            ),
        },
        "socket_errors": typing["counts"].get("errors", 0) + presence["counts"].get("errors", 0),
    }
    floor_p50, floor_p99 = (
        results["redis_pubsub_floor"]["p50_ms"],
        results["redis_pubsub_floor"]["p99_ms"],
    )
    for name in ("typing", "presence", "worker_emit"):
        row = results[name]
        row["ratio_to_floor_p50"] = round(row["p50_ms"] / floor_p50, 1) if floor_p50 else None
        row["ratio_to_floor_p99"] = round(row["p99_ms"] / floor_p99, 1) if floor_p99 else None
    event_p99 = max(results["typing"]["p99_ms"], results["worker_emit"]["p99_ms"])
    results["targets"] = {
        "event_p99_under_35ms": event_p99 < TARGET_EVENT_P99_MS,
        "presence_p99_under_75ms": results["presence"]["p99_ms"] < TARGET_PRESENCE_P99_MS,
        "no_message_lost": all(
            results[n]["lost"] == 0 for n in ("typing", "presence", "worker_emit")
        ),
    }
    print(json.dumps(results, indent=2))
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    print("\nkind                      p50 ms   p99 ms   x floor p50/p99   sent   lost")
    for name, label in (
        ("typing", "typing sender->receiver"),
        ("presence", "presence change->watcher"),
        ("worker_emit", "worker emit->client"),
    ):
        row = results[name]
        print(
            f"{label:25} {row['p50_ms']:7.2f} {row['p99_ms']:8.2f}   "
            f"{row['ratio_to_floor_p50']:>6} / {row['ratio_to_floor_p99']:<6}   "
            f"{row['sent']:5d} {row['lost']:5d}"
        )
    floor = results["redis_pubsub_floor"]
    print(f"{'redis pub/sub floor':25} {floor['p50_ms']:7.2f} {floor['p99_ms']:8.2f}")
    e2e = results["publish_to_client"]
    print(f"{'publish_event->client':25} {e2e['p50_ms']:7.2f} {e2e['p99_ms']:8.2f}")
    print(f"memory per connection: {results['memory']['per_connection_kib']} KiB")
    print(f"targets: {results['targets']}")


if __name__ == "__main__":
    main()
