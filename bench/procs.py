"""The processes a benchmark run starts (what /proc says about them is ``meters.py``).

Everything listens on 127.0.0.1 on free ports; everything is stopped by the PID it
was started with (tests.support's RedisServer and ServiceProcess do exactly that).
"""

from __future__ import annotations

import contextlib
import resource
import secrets
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.instructions import InstructionCounter, callgrind_wrapper
from tests.support.cluster import RedisCluster
from tests.support.processes import ServiceProcess
from tests.support.redis_server import RedisServer

CHATBOT_APP = "products.ai_chatbot.main:app"
WORKBENCH_APP = "products.agent_workbench.main:app"
NAIVE_APP = "bench.baselines.naive:app"
HUB_APP = "bench.baselines.hub:app"
BROADCASTER_APP = "bench.baselines.broadcast:app"
#: The Python targets other than the product: one uvicorn process each.
PYTHON_PEERS = {"naive": NAIVE_APP, "hub": HUB_APP, "broadcaster": BROADCASTER_APP}

#: What ``--targets`` accepts: the product, the baseline every ratio is against, and peers.
TARGETS = {
    "product": "this project (one uvicorn worker per service unless --workers)",
    "product-cluster": "this project on a local Redis Cluster of three primaries (no replicas)",
    "naive": "the spec's design written plainly: one Redis PubSub per SSE request",
    "hub": "bare ASGI hub, no Redis, no framework: the Python ceiling",
    "broadcaster": "encode/broadcaster: one Redis PubSub per process, a queue per subscriber",
    "nchan": "nginx + nchan with Redis (C)",
    "nchan-memory": "nginx + nchan in memory, no Redis (C)",
}

#: Targets whose socket I/O is counted by /proc/<pid>/io (read/write/writev, as libuv
#: does it). nginx uses recv/send, which that count leaves out: no figure for it.
SYSCALLS_COUNTED = ("product", "product-cluster", *PYTHON_PEERS)

#: The targets that run this project's services.
PRODUCT_TARGETS = ("product", "product-cluster")

#: The targets ``--instructions`` can count: Python services, one process each.
INSTRUCTIONS_COUNTED = SYSCALLS_COUNTED

#: uvicorn as it would run in production: uvloop + httptools, no per-request access log,
#: no ``Server`` header (as the Dockerfile runs it).
UVICORN_ARGS = [
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--no-server-header",
    "--log-level",
    "warning",
    "--backlog",
    "4096",
    # The generator's publisher connections stay open across a long connect phase.
    "--timeout-keep-alive",
    "600",
]


def raise_fd_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (children inherit it). Returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1_048_576
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def fresh_callgrind_out(prefix: Path, service: str) -> Path:
    """``<prefix>-<service>.out``, its folder made and an earlier run's files of that
    name gone: the counter reads a dump as soon as it holds totals, and would take a
    stale one for this run's."""
    out_file = prefix.with_name(f"{prefix.name}-{service}.out")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_file.parent.glob(f"{out_file.name}*"):
        stale.unlink()
    return out_file


class BenchRedis(RedisServer):
    """RedisServer with room for the naive design's one-connection-per-browser."""

    def _args(self) -> list[str]:
        return [*super()._args(), "--maxclients", "50000", "--tcp-backlog", "4096"]


@dataclass
class Stack:
    """Redis plus the services of one target (one of :data:`TARGETS`)."""

    target: str
    #: Worker processes per product service (each holds its own subscriber) and nginx
    #: worker processes of the nchan peers.
    workers: int = 1
    #: Run the Python services under callgrind (``--instructions``).
    count_instructions: bool = False
    #: Where each service's callgrind output goes: ``<this>-<service>.out``, and the
    #: measuring window's dump ``<this>-<service>.out.1`` (for ``callgrind_annotate``).
    callgrind_prefix: Path | None = None
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    redis: BenchRedis | None = None
    #: ``product-cluster``: the Redis Cluster (``redis`` then stays None).
    cluster: RedisCluster | None = None
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    #: Set when ``count_instructions``: counts the services' instructions.
    instructions: InstructionCounter | None = None

    @property
    def redis_url(self) -> str:
        if self.cluster is not None:
            return self.cluster.url
        assert self.redis is not None, "the stack is started"
        return self.redis.url

    def env(self) -> dict[str, str]:
        return {
            "REDIS_URL": self.redis_url,
            "AUTH_SECRET": self.secret,
            "MAX_STREAMS_PER_TOKEN": "100000",
            "MAX_STREAMS_TOTAL": "100000",
            "RATE_LIMIT_PER_MINUTE": "100000000",
            "RATE_LIMIT_BURST": "10000000",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self, workbench: bool = False) -> Stack:
        redis = None
        if self.target == "product-cluster":
            self.cluster = RedisCluster(primaries=3, replicas=0)
        else:
            redis = self.redis = BenchRedis()
            redis.start()
        try:
            if self.target in PRODUCT_TARGETS:
                args = [
                    *UVICORN_ARGS,
                    *(["--workers", str(self.workers)] if self.workers > 1 else []),
                ]
                self.services["chatbot"] = self._python_service("chatbot", CHATBOT_APP, args)
                if workbench:
                    self.services["workbench"] = self._python_service(
                        "workbench", WORKBENCH_APP, args
                    )
            elif self.target in PYTHON_PEERS:
                app = PYTHON_PEERS[self.target]
                self.services[self.target] = self._python_service(self.target, app, UVICORN_ARGS)
            else:
                from bench.baselines import nchan

                redis_url = redis.url if self.target == "nchan" and redis is not None else None
                self.services[self.target] = nchan.server(redis_url, self.workers).start()
        except BaseException:
            self.stop()
            raise
        return self

    def _python_service(self, name: str, app: str, args: list[str]) -> ServiceProcess:
        service = ServiceProcess(app, env=self.env(), extra_args=args)
        if not self.count_instructions:
            return service.start()
        if self.callgrind_prefix is not None:
            out_file = fresh_callgrind_out(self.callgrind_prefix, name)
        else:
            out_file = service.log_path.with_name("callgrind.out")
        service.wrapper = callgrind_wrapper(out_file)
        service.startup_timeout = 300.0  # imports run some 30x slower
        service.start()
        if self.instructions is None:
            self.instructions = InstructionCounter()
        self.instructions.add(service.pid, out_file)
        return service

    @property
    def main(self) -> ServiceProcess:
        """The service the bus scenarios publish to and subscribe on."""
        return self.services["chatbot" if self.target in PRODUCT_TARGETS else self.target]

    def pids(self) -> dict[str, int]:
        out = {name: svc.pid for name, svc in self.services.items()}
        if self.redis is not None:
            out["redis"] = self.redis.pid
        if self.cluster is not None:
            for index, node in enumerate(self.cluster.nodes):
                out["redis" if index == 0 else f"redis-{index + 1}"] = node.pid
        return out

    def stop(self) -> None:
        for svc in self.services.values():
            try:
                svc.stop(timeout=10)
            except Exception:
                svc.kill()
        self.services.clear()
        self.instructions = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


class Profiler:
    """py-spy sampling one service for a scenario, as folded stacks (the input of
    flamegraph.pl and speedscope) plus a summary of where the time went.

    Started before the scenario, stopped (SIGINT: py-spy then writes its file) after.
    py-spy needs ptrace rights over the service: as its parent we have them unless
    ``kernel.yama.ptrace_scope`` is 2 or more.
    """

    def __init__(self, pid: int, output: Path) -> None:
        exe = Path(sys.executable).with_name("py-spy")
        if not exe.exists():
            raise SystemExit(
                f"--profile needs py-spy: {sys.executable} -m pip install -e '.[bench]'"
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        self.output = output
        self.proc = subprocess.Popen(
            [
                str(exe),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--subprocesses",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if self.proc.returncode not in (0, -signal.SIGINT):
            print(
                f"py-spy exited {self.proc.returncode}: {err.decode(errors='replace')[-400:]}",
                file=sys.stderr,
            )
        elif self.output.exists():
            print(f"profile: {self.output}\n{summarize_profile(self.output)}", file=sys.stderr)


def summarize_profile(folded: Path, top: int = 25) -> str:
    """The functions with the most samples on the stack (inclusive), as shares of all."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        # py-spy frames look like "function (path/file.py:line)"; count each once per stack.
        for frame in {
            f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].split(":")[0].rstrip(")")
            for f in stack.split(";")
        }:
            inclusive[frame] += n
    lines = [f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return f"{total} samples\n" + "\n".join(lines)
