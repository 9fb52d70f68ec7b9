"""The benchmark's table: product, naive and their ratio, then one column per peer."""

from __future__ import annotations

from typing import Any

from bench.report import markdown


def run_with(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "time": "2026-11-24T00:00:00+00:00",
        "git": "abc1234",
        "args": {"scenarios": ["b"], "targets": list(results), "duration": 20.0, "quick": False},
        "machine": {"cpus": 2, "python": "3.11.7"},
        "results": results,
    }


def row(table: str, label: str) -> list[str]:
    line = next(line for line in table.splitlines() if f"| {label} |" in line)
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_peers_get_a_column_each_after_the_ratio() -> None:
    table = markdown(
        run_with(
            {
                "product": {"b": {"p99_ms": 20.0}},
                "naive": {"b": {"p99_ms": 80.0}},
                "hub": {"b": {"p99_ms": 28.0}},
                "nchan": {"b": {"p99_ms": 19.0}},
            }
        )
    )
    header = row(table, "scen.")
    assert header == [
        "scen.", "metric", "product", "naive", "ratio", "hub", "product / hub", "nchan", "target"
    ]  # fmt: skip
    assert row(table, "p99 latency (ms)") == [
        "b", "p99 latency (ms)", "20.0", "80.0", "0.25x", "28.0", "0.71x", "19.0", "<= 15"
    ]  # fmt: skip
    assert "nchan: nginx + nchan with Redis (C)." in table
    assert "--targets product,naive,hub,nchan" in table


def test_a_skipped_peer_shows_a_dash_and_why() -> None:
    table = markdown(
        run_with(
            {
                "product": {"b": {"p99_ms": 20.0}},
                "nchan": {"b": {"skipped": "nchan needs nginx with its nchan module"}},
            }
        )
    )
    assert row(table, "p99 latency (ms)")[2:6] == ["20.0", "-", "-", "-"]
    assert "- nchan (b): skipped: nchan needs nginx with its nchan module" in table


def test_without_peers_the_table_is_product_naive_ratio() -> None:
    table = markdown(run_with({"product": {"b": {"p99_ms": 20.0}}, "naive": {}}))
    assert row(table, "scen.") == ["scen.", "metric", "product", "naive", "ratio", "target"]


def test_with_the_hub_a_product_over_hub_column_follows_it() -> None:
    table = markdown(
        run_with(
            {
                "product": {"b": {"p99_ms": 20.0, "server_cpu_pct": 15.0}},
                "hub": {"b": {"p99_ms": 25.0, "server_cpu_pct": 0}},
                "nchan": {"b": {"p99_ms": 19.0}},
            }
        )
    )
    header = row(table, "scen.")
    assert header == [
        "scen.", "metric", "product", "naive", "ratio", "hub", "product / hub", "nchan", "target"
    ]  # fmt: skip
    assert row(table, "p99 latency (ms)")[5:8] == ["25.0", "0.80x", "19.0"]
    assert row(table, "server CPU %")[5:7] == ["0", "-"]  # no ratio to a zero
    separator = next(line for line in table.splitlines() if line.startswith("|---"))
    assert separator.count("|") == len(header) + 1
    assert "product / hub: the product against the Python ceiling" in table
