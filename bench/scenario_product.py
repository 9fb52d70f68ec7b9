"""Scenario (e), the product path: customer messages through the chatbot reach the
agents' streams on the workbench."""

from __future__ import annotations

import asyncio
import time

import orjson

from bench.loadgen import CHAT_EVENT
from bench.publisher import HttpConn, Publisher
from bench.run import HOST, MAX_PUBLISHERS, Run
from bench.scenario_steady import steady_result
from bench.stats import latency_quantiles
from infrastructure.auth.tokens import Role, issue_token


async def scenario_e(run: Run) -> None:
    """Customer messages through the chatbot reach the agents' streams on the workbench."""
    if not run.product:
        run.result["skipped"] = "only the product has this path"
        return
    chat = run.stack.services["chatbot"]
    bench = run.stack.services["workbench"]
    n = run.sizes.e_agents
    agents = [f"bench-agent-{i}" for i in range(n)]
    agent_tokens = [issue_token(run.settings, Role.AGENT, a) for a in agents]
    conn_c = await HttpConn(HOST, chat.port).connect()
    conn_w = await HttpConn(HOST, bench.port).connect()
    names: list[str] = []
    customer_tokens: list[str] = []
    for i in range(n):
        status, body = await conn_c.post(
            "/api/sessions", orjson.dumps({"session_name": f"bench-e-{i}"})
        )
        assert status == 201, (status, body)
        names.append(f"bench-e-{i}")
        customer_tokens.append(orjson.loads(body)["token"])
    subs = await run.open(
        [f"/api/agents/{a}/events?token={t}" for a, t in zip(agents, agent_tokens, strict=True)],
        port=bench.port,
        pattern=CHAT_EVENT,
    )
    for name, ctok, agent, atok in zip(names, customer_tokens, agents, agent_tokens, strict=True):
        status, body = await conn_c.post(
            "/api/manual/escalate", orjson.dumps({"session_name": name}), ctok
        )
        assert status == 200, (status, body)
        status, body = await conn_w.post(
            f"/api/sessions/{name}/takeover", orjson.dumps({"agent_id": agent}), atok
        )
        assert status == 200, (status, body)
    conn_c.close()
    conn_w.close()
    run.result["redis_connections"] = await run.redis_clients()
    pub = Publisher(
        HOST,
        chat.port,
        "",
        [f"/api/sessions/{x}/messages" for x in names],
        workers=min(n, MAX_PUBLISHERS),
        tokens=customer_tokens,
        body=lambda t, k: b'{"content":"bench %d %d"}' % (t, k),
    )
    await pub.connect()
    await asyncio.sleep(0.5)
    run.sink.reset()
    meter = run.meter()
    t0 = time.monotonic()
    await run.with_progress(pub.run(run.sizes.e_rate, run.duration), pub, "messages")
    seconds = time.monotonic() - t0
    cpu = meter.stop()

    def channel_of(key: int) -> int:
        return key

    await run.drain(subs, lambda: sum(pub.sent_ok[s.key] for s in subs))
    run.result.update(
        offered_msgs_per_s=run.sizes.e_rate,
        **steady_result(run, pub, cpu, seconds, subs, channel_of),
    )
    run.result["latency_cdf"] = latency_quantiles(run.sink)
    pub.close()
    await run.close(subs)
