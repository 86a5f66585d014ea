"""The notebooks in notebooks/: committed without outputs (fast), and each runs top to
bottom in a fresh kernel (slow). The notebooks assert facts about the library inline, so a
change that breaks one of them fails here with the failing cell and its error.

03_results.ipynb reads a sweep from GANFORGE_SWEEP_DIR: a session fixture trains the tiny
2 x 2 sweep once, as tests/cli/test_train.py does, and passes its folder in.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tests.cli.helpers import REPO, TINY, run_folders, run_train

NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = ["01_quantizer.ipynb", "02_normalization.ipynb", "03_results.ipynb"]
CELL_TIMEOUT = 120  # seconds per cell
SWEEP = ("-m", "norm=instance,pixel", "act=relu,lrelu", *TINY, "trainer.log_every_n_steps=1")
# The workloads are tiny: one thread per process is as fast on an idle machine, and several
# times faster than two threads fighting over two busy cores.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def code_cells(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text(encoding="utf-8"))["cells"] if cell["cell_type"] == "code"]


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs(name):
    path = NOTEBOOK_DIR / name
    dirty = [i for i, cell in enumerate(code_cells(path)) if cell.get("outputs") or cell.get("execution_count") is not None]
    assert not dirty, (
        f"{name}: code cells {dirty} carry outputs or execution counts; commit notebooks stripped: "
        "python -m tests.test_notebooks"
    )
    metadata = json.loads(path.read_text(encoding="utf-8"))["metadata"]
    assert metadata.get("kernelspec", {}).get("name") == "python3", f"{name}: the kernel must be python3"


def test_results_notebook_trains_the_tests_tiny_sweep():
    # 03 runs its own sweep when GANFORGE_SWEEP_DIR is unset, with the tiny settings it says
    # are those of tests/cli/helpers.py: keep them so.
    lists = []
    for cell in code_cells(NOTEBOOK_DIR / "03_results.ipynb"):
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TINY" for t in node.targets):
                lists.append(ast.literal_eval(node.value))
    assert len(lists) == 1, "03_results.ipynb should define TINY once"
    assert set(TINY) <= set(lists[0]), sorted(set(TINY) - set(lists[0]))
    assert set(lists[0]) - set(TINY) <= {"trainer.log_every_n_steps=1"}


def execute(name: str) -> None:
    """Run notebooks/<name> in a new python3 kernel with notebooks/ as its working folder."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        failed = [i for i, cell in enumerate(notebook.cells)
                  if cell.cell_type == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", []))]
        where = f"cell {failed[0]} (0-based, markdown included)" if failed else "a cell"
        pytest.fail(f"{name}: {where} failed:\n{error}", pytrace=False)


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> Path:
    """A 2 x 2 multirun (norm=instance,pixel x act=relu,lrelu) of tiny models: its folder
    multirun/<date>/<time>, holding 0/ .. 3/."""
    log_dir = tmp_path_factory.mktemp("notebook_sweep")
    result = run_train(*SWEEP, log_dir=log_dir, env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep] = list((log_dir / "multirun").glob("*/*"))
    assert len(run_folders(sweep)) == 4
    return sweep


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_quantizer.ipynb", "02_normalization.ipynb"])
def test_notebook_runs(name, monkeypatch):
    for key, value in ONE_THREAD.items():
        monkeypatch.setenv(key, value)
    execute(name)


@pytest.mark.slow
def test_results_notebook_reads_a_sweep(tiny_sweep, monkeypatch):
    for key, value in ONE_THREAD.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GANFORGE_SWEEP_DIR", str(tiny_sweep))
    execute("03_results.ipynb")


def strip_outputs(path: Path) -> bool:
    """Remove the outputs, execution counts and execution timings of `path`'s code cells;
    returns whether anything changed."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    changed = False
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        changed |= bool(cell.outputs) or cell.execution_count is not None
        changed |= any(key in cell.metadata for key in ("execution", "ExecuteTime"))
        cell.outputs, cell.execution_count = [], None
        for key in ("execution", "ExecuteTime"):
            cell.metadata.pop(key, None)
    if changed:
        nbformat.write(notebook, path)
    return changed


if __name__ == "__main__":
    # python -m tests.test_notebooks: strip the outputs of every notebook before committing.
    for notebook_path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        print(f"{notebook_path.relative_to(REPO)}: {'stripped' if strip_outputs(notebook_path) else 'already clean'}")
