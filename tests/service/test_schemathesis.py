"""Property-based requests generated from the app's own OpenAPI spec never produce a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import LiveServer

pytestmark = pytest.mark.slow

# The spec is the app's own; building it loads no models (those load in the server's lifespan).
schema = schemathesis.openapi.from_dict(create_app(Settings(model="none")).openapi())


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_errors(case: schemathesis.Case, gen_server: LiveServer) -> None:
    """Whatever the spec allows (and the edges it does not), the server answers below 500."""
    response = case.call(base_url=gen_server.url, timeout=120)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:500]}"
