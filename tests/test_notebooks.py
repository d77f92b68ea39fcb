"""Every notebook under notebooks/ runs top to bottom (small settings) and is committed
without outputs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell
KERNEL = "gnnleaky-test"


def _ids(paths):
    return [p.stem for p in paths]


@pytest.fixture
def kernel_env(monkeypatch, tmp_path):
    """A kernel spec that runs this interpreter, and the small-settings environment.

    The spec lives in a temporary directory, so a ``python3`` kernel registered elsewhere
    (user or system Jupyter paths) can never be picked up instead of this venv.
    """
    spec = tmp_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "gnnleaky (test)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("GNNLEAKY_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # One intra-op thread: on a small shared machine torch's pool oversubscribes badly.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))
    return KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])


def _execute(nb, spec_manager):
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=spec_manager)
    client = NotebookClient(
        nb,
        km=km,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute()
    return nb


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3, NOTEBOOKS


def test_kernel_runs_this_interpreter_from_the_repo_root(kernel_env):
    code = (
        "import os, sys, gnnleaky\nprint(sys.executable)\nprint(os.getcwd())\n"
        "print(gnnleaky.__file__)"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    out = _execute(nb, kernel_env).cells[0].outputs[0]["text"].splitlines()
    assert out[0] == sys.executable
    assert Path(out[1]) == ROOT
    assert Path(out[2]).resolve().is_relative_to(ROOT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {i} has outputs"
            assert cell.execution_count is None, f"{path.name}: cell {i} has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path, kernel_env):
    nb = nbformat.read(path, as_version=4)
    _execute(nb, kernel_env)  # raises CellExecutionError with the failing cell
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
