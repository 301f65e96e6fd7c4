"""Workflow tests run the real worker (``worker`` fixture in tests/conftest.py: real activities, real
connectors) against the real Temporal dev server and the emulators over HTTP, each on its own task queue.
Saved histories and their replay: tests/helpers/histories.py.

``pair``: the flow tests that must hold for every CRM/CLM pair the stack presets name take it (parametrised by
preset, see tests/helpers/pairs.py) with settings choosing the pair and each side's acts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from canonical.ownership import SystemRole
from connectors.acts import ClmActs, CrmActs, acts_for
from connectors.registry import default_registry
from settings import Settings
from tests.helpers.pairs import Pair, crm_clm_stacks, pair_settings
from tests.helpers.servers import SandboxHandle


@pytest.fixture(params=crm_clm_stacks())
def pair_stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture
async def pair(pair_stack: str, flow_settings: Settings, request: pytest.FixtureRequest,
               sandboxes: dict[str, SandboxHandle]) -> AsyncIterator[Pair]:
    settings = pair_settings(flow_settings, pair_stack)
    registry = default_registry(settings)
    crm_spec, clm_spec = registry.chosen(settings, SystemRole.CRM), registry.chosen(settings, SystemRole.CLM)
    for spec in (crm_spec, clm_spec):  # the pair's emulators (the default ones are in ``sandboxes`` already)
        request.getfixturevalue(f"{spec.name}_sandbox")
    async with httpx.AsyncClient(timeout=10) as http:
        crm, clm = acts_for(crm_spec, settings, http), acts_for(clm_spec, settings, http)
        assert isinstance(crm, CrmActs) and isinstance(clm, ClmActs)
        yield Pair(stack=pair_stack, settings=settings, crm_name=crm_spec.name, clm_name=clm_spec.name,
                   crm=crm, clm=clm)
