import pytest

from tests.harness import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, TOKEN, make_config, run_tap
from tests.simulator import Dataset, Simulator


@pytest.fixture
def simulator():
    """Factory: simulator(dataset=None, **options) -> a started Simulator using the test token; stopped after."""
    started = []

    def start(dataset=None, **options):
        options.setdefault("token", TOKEN)
        options.setdefault("client_id", CLIENT_ID)
        options.setdefault("client_secret", CLIENT_SECRET)
        options.setdefault("refresh_token", REFRESH_TOKEN)
        sim = Simulator(dataset or Dataset.generate(seed=3), **options)
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(simulator):
    return simulator()


@pytest.fixture
def config(sim):
    return make_config(sim)


@pytest.fixture
def discovered(sim, config):
    result = run_tap(config, args=["--discover"], parse=False)
    assert result.returncode == 0, result.stderr
    import json
    return json.loads(result.stdout)
