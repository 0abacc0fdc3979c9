"""Fixtures of the integration tests: the admin API's client (``admin_api.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from gateway.admin.tokens import AdminTokens
from gateway.app import STORE
from tests.conftest import GatewayWith
from tests.integration.admin_api import Admin


@pytest.fixture
async def admin(gateway_with: GatewayWith) -> AsyncIterator[Admin]:
    gateway = await gateway_with(admin={"enabled": True, "max_body_bytes": 4096})
    token = await AdminTokens(gateway.app[STORE], "test").create("alice")
    async with aiohttp.ClientSession() as http:
        yield Admin(gateway, http, token)
