"""One mock server per test module over a real socket, emptied before each test, and a requests session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from audiences.mockserver.server import MockServer


@pytest.fixture(scope="module")
def running() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture
def server(running: MockServer) -> MockServer:
    running.reset()
    return running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
