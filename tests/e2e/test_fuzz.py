"""Schemathesis against both services' OpenAPI documents, bounded for CI.

Every generated request, valid or not, must get an answer that is not a 5xx and
that fits the schema the service documents for it. Streams are left out (they do
not end by themselves); the publish API, sessions, manual and agent endpoints are in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Err

from infrastructure.auth.tokens import SUPERVISOR_SCOPE, Role, issue_token
from tests.support.deployment import Deployment, start_deployment, stop_deployment

pytestmark = pytest.mark.e2e

#: Per operation; the whole module stays within about a minute on 2 cores.
MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Deployment]:
    # Generous limits: the fuzzer is one client sending many requests.
    deployed = start_deployment(
        env={
            "RATE_LIMIT_PER_MINUTE": "100000",
            "RATE_LIMIT_BURST": "100000",
            "SUPERVISORS": "fuzz-lead",
        }
    )
    yield deployed
    stop_deployment(deployed)


def _schema(base_url: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    return schema.exclude(method="GET", path_regex=r"/events$")


_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
_CHECKS = [not_a_server_error, response_schema_conformance]


def _fuzz(base_url: str, headers: dict[str, str]) -> int:
    """Every operation of the service's schema, MAX_EXAMPLES cases each; returns how many
    operations ran. (Driven by hand: schemathesis' pytest bridge predates pytest 9.)"""
    operations = 0
    for result in _schema(base_url).get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"the service's OpenAPI document is invalid: {result.err()}")
        operation = result.ok()

        @_SETTINGS
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=_CHECKS)

        run()
        operations += 1
    return operations


def _headers(d: Deployment, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {d.token(role, 'fuzz')}"}


def test_chatbot_as_a_service_never_answers_5xx(fuzzed: Deployment) -> None:
    assert _fuzz(fuzzed.chatbot, _headers(fuzzed, Role.SERVICE)) >= 8


def test_chatbot_as_a_customer_never_answers_5xx(fuzzed: Deployment) -> None:
    assert _fuzz(fuzzed.chatbot, _headers(fuzzed, Role.CUSTOMER)) >= 8


def test_workbench_as_an_agent_never_answers_5xx(fuzzed: Deployment) -> None:
    assert _fuzz(fuzzed.workbench, _headers(fuzzed, Role.AGENT)) >= 8


def test_workbench_as_a_supervisor_never_answers_5xx(fuzzed: Deployment) -> None:
    token = issue_token(fuzzed.settings, Role.AGENT, "fuzz-lead", scopes=[SUPERVISOR_SCOPE])
    assert _fuzz(fuzzed.workbench, {"Authorization": f"Bearer {token}"}) >= 8
