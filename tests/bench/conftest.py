import pytest

from gnnleaky.bench.sweep import run_sweep
from tests.bench._backends import CONFIG


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    """The backend tests' reference: CONFIG swept by the local backend."""
    path = tmp_path_factory.mktemp("local") / "local.sqlite"
    summary = run_sweep(CONFIG, path, backend="local")
    assert (summary.trained, summary.failed) == (8, 0)
    return path
