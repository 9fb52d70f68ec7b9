"""Results: one JSON line per run, a markdown table, a PNG figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

#: (scenario, label, key, better, target): the rows of the table.
ROWS: list[tuple[str, str, str, str, str]] = [
    ("a", "p50 latency (ms)", "p50_ms", "lower", ""),
    ("a", "p99 latency (ms)", "p99_ms", "lower", "<= 0.5"),
    ("a", "loss %", "loss_pct", "lower", "0"),
    ("a", "server CPU % (of one core)", "server_cpu_pct", "lower", "<= 10"),
    ("a", "server read+write system calls per message", "server_syscalls_per_msg", "lower", ""),
    (
        "a",
        "server instructions per message (callgrind)",
        "server_instructions_per_msg",
        "lower",
        "",
    ),
    ("a", "Redis connections", "redis_connections", "lower", ""),
    ("b", "p50 latency (ms)", "p50_ms", "lower", ""),
    ("b", "p99 latency (ms)", "p99_ms", "lower", "<= 15"),
    ("b", "delivered events/s", "delivered_events_per_s", "higher", "20,000"),
    ("b", "loss %", "loss_pct", "lower", "0"),
    ("b", "server CPU %", "server_cpu_pct", "lower", "<= 30"),
    (
        "b",
        "server instructions per message (callgrind)",
        "server_instructions_per_msg",
        "lower",
        "",
    ),
    ("c", "connected", "subscribers_connected", "higher", "10,000"),
    ("c", "live (received their event)", "live", "higher", "10,000"),
    ("c", "server RSS per connection (KB)", "rss_per_conn_kb", "lower", "<= 20"),
    ("c", "time to open (s)", "open_seconds", "lower", "<= 3"),
    (
        "c",
        "server read+write system calls per stream opened",
        "open_server_syscalls_per_conn",
        "lower",
        "",
    ),
    (
        "c",
        "server instructions per stream opened (callgrind)",
        "open_server_instructions_per_conn",
        "lower",
        "",
    ),
    ("c", "Redis connections", "redis_connections", "lower", "<= 2 + pool"),
    ("c", "idle server CPU %", "idle_server_cpu_pct", "lower", ""),
    (
        "d",
        "max delivered events/s (p99 <= 100 ms, 0 lost)",
        "max_ok_delivered_events_per_s",
        "higher",
        ">= 20k, then >= 30k",
    ),
    ("d", "p99 at that rate (ms)", "p99_ms", "lower", ""),
    ("d", "server CPU % at that rate", "server_cpu_pct", "lower", ""),
    ("e", "p50 latency chatbot -> agent stream (ms)", "p50_ms", "lower", ""),
    ("e", "p99 latency (ms)", "p99_ms", "lower", ""),
    ("e", "loss %", "loss_pct", "lower", "0"),
    ("e", "server CPU % (chatbot + workbench)", "server_cpu_pct", "lower", ""),
]


#: Why the table has a product / hub column when the hub ran.
_VS_HUB_NOTE = (
    "product / hub: the product against the Python ceiling, run minutes apart on the same "
    "machine (whose speed drifts between days: compare builds by their counts)."
)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ratio(p: Any, n: Any) -> str:
    if not isinstance(p, int | float) or not isinstance(n, int | float) or n == 0:
        return "-"
    return f"{p / n:.2f}x"


def markdown(run: dict[str, Any]) -> str:
    from bench.procs import TARGETS

    res = run["results"]
    prod, naive = res.get("product", {}), res.get("naive", {})
    peers = [t for t in res if t not in ("product", "naive")]
    # One column per peer, and the product's ratio to the hub right after the hub's.
    columns = [(peer, False) for peer in peers]
    if "hub" in peers:
        columns.insert(peers.index("hub") + 1, ("hub", True))
    lines = [
        f"# Benchmark {run['time']} (git {run['git']})",
        "",
        f"`python -m bench --scenario {','.join(run['args']['scenarios'])} --targets "
        f"{','.join(res)} --duration {run['args']['duration']:g}"
        f"{' --quick' if run['args']['quick'] else ''}"
        f"{' --instructions' if run['args'].get('instructions') else ''}` on "
        f"{run['machine']['cpus']} CPUs, Python {run['machine']['python']}, generator, Redis "
        f"and the services on the same machine; total {run.get('total_seconds', '?')} s.",
        "",
        "ratio = product / naive (below 1 is better where lower is better).",
        *(f"{peer}: {TARGETS.get(peer, '')}." for peer in peers),
        *([_VS_HUB_NOTE] if "hub" in peers else []),
        "",
        "| scen. | metric | product | naive | ratio | "
        + "".join(f"product / {peer} | " if ratio else f"{peer} | " for peer, ratio in columns)
        + "target |",
        "|---|---|---|---|---|" + "---|" * len(columns) + "---|",
    ]
    counted = run["args"].get("instructions", False)
    for scen, label, key, _better, target in ROWS:
        if all(scen not in scenarios for scenarios in res.values()):
            continue
        if counted != ("callgrind" in label):
            continue  # under callgrind only the counts mean something
        p = prod.get(scen, {}).get(key)
        n = naive.get(scen, {}).get(key)
        others = ""
        for peer, ratio in columns:
            value = res[peer].get(scen, {}).get(key)
            others += f"{_ratio(p, value) if ratio else _fmt(value)} | "
        lines.append(
            f"| {scen} | {label} | {_fmt(p)} | {_fmt(n)} | {_ratio(p, n)} | {others}{target} |"
        )
    lines += ["", "## Generator and notes", ""]
    for target, scenarios in res.items():
        for scen, r in scenarios.items():
            bits = []
            if "generator_cpu_pct" in r:
                g = r["generator_cpu_pct"]
                bits.append(f"generator CPU {g} %{' (SATURATED)' if g >= 85 else ''}")
            if "others_cpu_pct" in r:
                bits.append(f"other processes on the machine {r['others_cpu_pct']} %")
            for k in (
                "subscribers_connected",
                "connect_errors",
                "publish_errors",
                "duplicates",
                "out_of_order",
                "lost",
                "wall_seconds",
            ):
                if k in r:
                    bits.append(f"{k} {r[k]}")
            if r.get("redis_connections_by_name"):
                bits.append(f"Redis connections by name {r['redis_connections_by_name']}")
            if r.get("connect_error_samples"):
                bits.append(f"connect errors e.g. {r['connect_error_samples'][:2]}")
            if r.get("publish_error_samples"):
                bits.append(f"publish errors e.g. {r['publish_error_samples'][:2]}")
            if r.get("error"):
                bits.append(f"ERROR {r['error']}")
            if r.get("skipped"):
                bits.append(f"skipped: {r['skipped']}")
            lines.append(f"- {target} ({scen}): " + "; ".join(str(b) for b in bits))
    if run["machine"].get("fd_note"):
        lines.append(f"- note: {run['machine']['fd_note']}")
    for target, scenarios in res.items():
        steps = scenarios.get("d", {}).get("steps")
        if not steps:
            continue
        lines += [
            "",
            f"### (d) ramp, {target}",
            "",
            "| offered ev/s | published msg/s | delivered ev/s | p50 ms | p99 ms | lost | "
            "server CPU % | redis CPU % | generator CPU % | others CPU % | ok |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in steps:
            lines.append(
                f"| {_fmt(float(s['offered_events_per_s']))} | {_fmt(s['published_per_s'])} | "
                f"{_fmt(s['delivered_events_per_s'])} | {_fmt(s['p50_ms'])} | "
                f"{_fmt(s['p99_ms'])} | {s['lost']} | {s['server_cpu_pct']} | "
                f"{s['redis_cpu_pct']} | {s['generator_cpu_pct']} | "
                f"{s.get('others_cpu_pct', '-')} | {'yes' if s['ok'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def plot(run: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    # One latency panel per scenario (their scales differ by 100x) and the rate panel;
    # a target keeps its color everywhere, so six targets stay readable.
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    targets = list(run["results"])
    color = {t: f"C{i}" for i, t in enumerate(targets)}
    width = {t: 2.2 if t == "product" else 1.2 for t in targets}
    for ax, scen in zip(axes.flat, ("a", "b", "c", "d", "e"), strict=False):
        for target in targets:
            cdf = run["results"][target].get(scen, {}).get("latency_cdf")
            if cdf:
                ax.plot(
                    np.maximum(cdf, 1e-3),
                    np.linspace(0, 100, len(cdf)),
                    color=color[target],
                    linewidth=width[target],
                    label=target,
                )
        ax.set_xscale("log")
        ax.set_xlabel("latency, send -> receive (ms, log)")
        ax.set_ylabel("percentile")
        ax.set_title(f"({scen}) latency distribution")
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    rate = axes.flat[5]
    top = 1.0
    for target in targets:
        scenarios = run["results"][target]
        steps = scenarios.get("d", {}).get("steps") or []
        if steps:
            offered = [s["offered_events_per_s"] for s in steps]
            delivered = [s["delivered_events_per_s"] for s in steps]
            top = max(top, *offered, *delivered)
            rate.plot(
                offered,
                delivered,
                "o-",
                color=color[target],
                linewidth=width[target],
                label=f"{target} (d ramp)",
            )
            for s in steps:
                if not s["ok"]:
                    rate.annotate(
                        "p99>100ms or loss",
                        (s["offered_events_per_s"], s["delivered_events_per_s"]),
                        fontsize=7,
                    )
        for scen, marker in (("a", "s"), ("b", "^"), ("e", "D")):
            r = scenarios.get(scen, {})
            if r.get("offered_events_per_s") and r.get("delivered_events_per_s"):
                rate.plot(
                    [r["offered_events_per_s"]],
                    [r["delivered_events_per_s"]],
                    marker,
                    color=color[target],
                    label=f"{target} ({scen})",
                )
    rate.plot([0, top], [0, top], ":", color="grey", label="delivered = offered")
    rate.set_xlabel("offered events/s")
    rate.set_ylabel("delivered events/s")
    rate.set_title("delivered vs offered")
    rate.grid(True, alpha=0.3)
    rate.legend(fontsize=7, ncol=2)
    fig.suptitle(f"SSE bus benchmark {run['time']} (git {run['git']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(run: dict[str, Any], out: Path, plot_png: bool = True, **kw: Any) -> list[Path]:
    plot_png = kw.get("plot", plot_png)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "runs.jsonl"
    with jsonl.open("ab") as f:
        f.write(orjson.dumps(run) + b"\n")
    md = out / "latest.md"
    md.write_text(markdown(run))
    paths = [jsonl, md]
    if plot_png:
        png = out / "latest.png"
        plot(run, png)
        paths.append(png)
    return paths
