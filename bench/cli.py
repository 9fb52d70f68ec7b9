"""``python -m bench``: run the scenarios against the product and the naive baseline."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.sizes import Sizes

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
NEEDED = ("numpy", "matplotlib", "uvloop")


def check_dependencies() -> None:
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"python -m bench needs {', '.join(missing)}: install the benchmark extra with\n"
            f"    {sys.executable} -m pip install -e '.[bench]'",
            file=sys.stderr,
        )
        raise SystemExit(2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from bench.procs import TARGETS
    from bench.scenarios import SCENARIOS
    from bench.sizes import CALLGRIND_SCENARIOS

    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load-test the SSE bus (product vs the spec's naive design) on 127.0.0.1.",
        epilog="scenarios:\n"
        + "\n".join(f"  {k}: {v}" for k, v in SCENARIOS.items())
        + "\ntargets:\n"
        + "\n".join(f"  {k}: {v}" for k, v in TARGETS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario",
        default=None,
        help="comma-separated subset of a,b,c,d,e (default: all; a,b,c with --instructions)",
    )
    parser.add_argument(
        "--targets",
        default="product,naive",
        help=f"comma-separated subset of {','.join(TARGETS)}, or all (default: product,naive)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of load per scenario (d: the whole ramp); default 20, 5 with --quick",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small counts and ~5 s per scenario: a smoke run"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes per product service (default 1)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="attach py-spy to the main service per scenario: results/profile-<target>-<s>.folded",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="run the Python services under valgrind's callgrind and count their "
        "instructions per message (a, b) and per stream opened (c): a CPU figure that "
        "does not drift with the machine; small sizes, latencies meaningless",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--results", type=Path, default=RESULTS, help="output directory")
    args = parser.parse_args(argv)
    if args.scenario is None:
        args.scenario = ",".join(CALLGRIND_SCENARIOS if args.instructions else SCENARIOS)
    args.scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    bad = [s for s in args.scenarios if s not in SCENARIOS]
    if bad:
        parser.error(f"unknown scenario(s): {', '.join(bad)}")
    args.target_list = (
        list(TARGETS)
        if args.targets == "all"
        else [t.strip() for t in args.targets.split(",") if t.strip()]
    )
    bad = [t for t in args.target_list if t not in TARGETS]
    if bad:
        parser.error(f"unknown target(s): {', '.join(bad)}; targets are {', '.join(TARGETS)}")
    if args.instructions:
        _check_instructions(parser, args)
    if args.duration is None:
        args.duration = 5.0 if args.quick else 20.0
    return args


def _check_instructions(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from bench.instructions import missing_tools
    from bench.procs import INSTRUCTIONS_COUNTED
    from bench.sizes import CALLGRIND_SCENARIOS

    why = missing_tools()
    if why is not None:
        parser.error(f"--instructions: {why}")
    bad = [s for s in args.scenarios if s not in CALLGRIND_SCENARIOS]
    if bad:
        parser.error(f"--instructions runs scenarios {','.join(CALLGRIND_SCENARIOS)}, not {bad}")
    bad = [t for t in args.target_list if t not in INSTRUCTIONS_COUNTED]
    if bad:
        parser.error(f"--instructions counts {','.join(INSTRUCTIONS_COUNTED)}, not {bad}")
    if args.workers != 1 or args.quick or args.profile:
        parser.error("--instructions runs one worker, full counts, no profiler")
    if args.duration is None:
        args.duration = 10.0


def git_rev() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def sizes_of(args: argparse.Namespace) -> Sizes:
    from bench.sizes import CALLGRIND, FULL, QUICK

    return CALLGRIND if args.instructions else QUICK if args.quick else FULL


async def run_one(target: str, scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    from bench.baselines.nchan import PeerUnavailable
    from bench.procs import Profiler, Stack
    from bench.run import Run, log
    from bench.scenarios import RUNNERS

    if target not in ("product", "product-cluster") and scenario == "e":
        return {"scenario": "e", "target": target, "skipped": "only the product has this path"}
    log(f"==> [{target} {scenario}] starting redis-server and services")
    t0 = time.monotonic()
    stack = Stack(
        target,
        workers=args.workers,
        count_instructions=args.instructions,
        callgrind_prefix=args.results / f"callgrind-{target}-{scenario}",
    )
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, lambda: stack.start(workbench=scenario == "e"))
    except PeerUnavailable as exc:
        log(f"--- [{target} {scenario}] skipped: {exc}")
        return {"scenario": scenario, "target": target, "skipped": str(exc)}
    run = None
    profiler = (
        Profiler(stack.main.pid, args.results / f"profile-{target}-{scenario}.folded")
        if args.profile
        else None
    )
    try:
        run = Run(stack, scenario, sizes_of(args), args.duration)
        # Bounded: a scenario that hangs is cut off and reported, never left running.
        limit = args.duration * 3 + 120
        await asyncio.wait_for(RUNNERS[scenario](run), timeout=limit)
        result = run.result
    except Exception as exc:  # a failed scenario is reported, the others still run
        result = dict(run.result) if run is not None else {"scenario": scenario, "target": target}
        result["error"] = f"{type(exc).__name__}: {exc}"
        log(f"!!! [{target} {scenario}] {result['error']}")
    finally:
        if profiler is not None:
            await loop.run_in_executor(None, profiler.stop)
        await loop.run_in_executor(None, stack.stop)
    result["wall_seconds"] = round(time.monotonic() - t0, 1)
    log(f"<== [{target} {scenario}] done in {result['wall_seconds']} s")
    return result


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    from bench.procs import raise_fd_limit
    from bench.run import log

    soft, hard = raise_fd_limit()
    log(f"fd limit: {soft} (hard {hard})")
    needed = 2 * sizes_of(args).c_subs + 200
    fd_note = None
    if "c" in args.scenarios and hard < needed:
        fd_note = (
            f"RLIMIT_NOFILE hard limit {hard} < {needed}: the naive design needs 2 fds per "
            f"subscriber (client + Redis) in one process, so (c) is capped by it"
        )
        log("warning: " + fd_note)
    results: dict[str, dict[str, Any]] = {t: {} for t in args.target_list}
    for scenario in args.scenarios:
        for target in args.target_list:
            results[target][scenario] = await run_one(target, scenario, args)
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_rev(),
        "args": {
            "scenarios": args.scenarios,
            "targets": args.target_list,
            "duration": args.duration,
            "quick": args.quick,
            "instructions": args.instructions,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "fd_limit": [soft, hard],
            "fd_note": fd_note,
        },
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    check_dependencies()
    args = parse_args(argv)
    import uvloop

    from bench.report import write_reports

    t0 = time.monotonic()
    run = uvloop.run(amain(args))
    run["total_seconds"] = round(time.monotonic() - t0, 1)
    paths = write_reports(run, args.results, plot=not args.no_plot)
    print((args.results / "latest.md").read_text())
    for p in paths:
        print(f"wrote {p}")
    return 0
