import socket

import pytest
from hypothesis import HealthCheck, settings

# The first examples pay for importing pendulum's fallback parser; time limits would only make them flaky.
settings.register_profile("unit", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("unit")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Unit tests never open a connection: any attempt fails the test loudly."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("a unit test tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
