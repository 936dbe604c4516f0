"""Fixtures for the executor tests: the OpenAI-compatible stand-in (tests/openai_standin.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.openai_standin import FakeOpenAI, Reply, running_openai

__all__ = ["FakeOpenAI", "Reply"]


@pytest.fixture
def backend() -> str:
    """Executors do not depend on the backend (the contract suite covers sessions on each)."""
    return "sqlite"


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with running_openai() as fake:
        yield fake
