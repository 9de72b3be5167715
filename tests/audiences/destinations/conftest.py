"""Recorded HTTP (every registered response must be used), a list that stands in for sleeping, and
adapters wired to both and closed after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import responses

A = TypeVar("A")


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def adapters(sleeps: list[float]) -> Iterator[Callable[[A], A]]:
    """Keeps an HTTP adapter for the test: its waits go to ``sleeps``, and it is closed afterwards."""
    made: list[Any] = []

    def keep(adapter: A) -> A:
        adapter.http.sleep = sleeps.append  # type: ignore[attr-defined]
        made.append(adapter)
        return adapter

    yield keep
    for adapter in made:
        adapter.close()
