"""Fixtures the platform tests share: the simulator on a real socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from steadypost.testing import PlatformSimulator, SimulatorServer


@pytest.fixture
def server(sim: PlatformSimulator) -> Iterator[SimulatorServer]:
    """The test's ``sim`` (each test module makes its own) on 127.0.0.1."""
    with SimulatorServer(sim) as running:
        yield running
