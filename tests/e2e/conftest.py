import pytest

from tests.e2e.tools import PostgresServer, find_postgres_bin, unavailable


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: the tap with real targets, a real PostgreSQL and Meltano (tests/e2e)")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the session, on a free port of 127.0.0.1; each test makes its own database."""
    bindir = find_postgres_bin()
    if bindir is None:
        unavailable("PostgreSQL's initdb is not installed (apt-get install postgresql)")
    server = PostgresServer(bindir)
    try:
        server.start()
    except Exception as exc:
        server.stop()
        pytest.fail(f"could not start PostgreSQL from {bindir}: {exc}")
    yield server
    server.stop()
