"""The example notebooks: stored without outputs, as examples/_build.py writes them, and each runs.

Each notebook is executed in a fresh kernel of this interpreter (nbclient), from the
examples folder as a learner opening it in Jupyter would; a cell that raises fails the test
with the cell's traceback, and so does a warning in any output or a file written into the
checkout (a notebook saves its files in a temporary folder). The notebooks read
Fashion-MNIST: without it they skip, or fail when DLSCRATCH_REQUIRE_DATA=1 (CI).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
from conftest import require_or_skip
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

from dlscratch.datasets import DatasetNotFoundError, load_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(path.name for path in EXAMPLES.glob("*.ipynb"))
KERNEL = "dlscratch-examples"
# files a notebook saves, as patterns under the temporary folder (TMPDIR)
WRITES = {"ch05_backprop.ipynb": ["dlscratch-ch05-*/apple_orange.svg"]}
# what Python, pytest and tools write into a checkout by themselves; a notebook's files are none of these
NOT_THE_NOTEBOOKS = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", ".venv"}


def _build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("examples_build", EXAMPLES / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(EXAMPLES / name, as_version=4)


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_there_is_a_notebook_for_chapters_5_6_and_7():
    assert [name[:4] for name in NOTEBOOKS] == ["ch05", "ch06", "ch07"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_stored_without_outputs(name):
    notebook = _read(name)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_notebooks_are_what_the_build_script_writes():
    """Edit examples/_build.py and run it; the stored notebooks must follow."""
    build = _build_script()
    assert sorted(build.NOTEBOOKS) == NOTEBOOKS
    for name, cells in build.NOTEBOOKS.items():
        expected, stored = build.build(cells), _read(name)
        assert _cells(stored) == _cells(expected), f"{name} differs: run python examples/_build.py"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernelspec running this very interpreter, so the kernel imports this dlscratch."""
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(jupyter_path / "kernels" / KERNEL, overrides={"display_name": "dlscratch tests"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter_path))
        yield KERNEL


def _checkout_files() -> dict[Path, tuple[int, int]]:
    """Size and modification time of every file of the checkout."""
    files = {}
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in NOT_THE_NOTEBOOKS]
        for name in names:
            stat = (Path(folder) / name).stat()
            files[Path(folder) / name] = (stat.st_size, stat.st_mtime_ns)
    return files


def _warnings_shown(notebook: nbformat.NotebookNode) -> list[str]:
    """Every output a learner would read as a warning: anything on stderr, or text naming a warning."""
    shown = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") + output.get("data", {}).get("text/plain", "")
            if output.get("name") == "stderr" or "warning" in text.lower():
                shown.append(f"cell {index}: {text.strip()[:300]}")
    return shown


@pytest.fixture(scope="module")
def fashion_mnist():
    try:
        load_fashion_mnist(download=False)
    except DatasetNotFoundError:
        require_or_skip("Fashion-MNIST", "DLSCRATCH_REQUIRE_DATA")


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, kernel, fashion_mnist, tmp_path, monkeypatch):
    notebook = _read(name)
    folder = {"metadata": {"path": str(EXAMPLES)}}  # the notebook's working directory
    client = NotebookClient(notebook, timeout=180, kernel_name=kernel, resources=folder)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's temporary folder
    before = _checkout_files()
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell's traceback, when a cell fails
    print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)

    after = _checkout_files()
    written = sorted(str(path.relative_to(ROOT)) for path in after if after[path] != before.get(path))
    for path in after.keys() - before.keys():
        path.unlink()  # so that the next run fails as well, instead of finding the file already there
    assert not written, f"{name} wrote into the checkout: {written}"
    warnings = _warnings_shown(notebook)
    assert not warnings, f"{name} showed warnings: {warnings}"

    shown = [output for cell in notebook.cells for output in cell.get("outputs", []) if "data" in output]
    pictures = [output for output in shown if {"image/png", "image/svg+xml"} & set(output.data)]
    assert pictures, f"{name} showed no picture"
    for output in shown:
        text = output.data.get("text/plain", "")
        if text.startswith(("<Figure", "ComputationalGraph(")):
            assert output in pictures, f"{name} showed {text} as text, not as a picture"
    for pattern in WRITES.get(name, []):
        saved = list(tmp_path.glob(pattern))
        assert saved and saved[0].stat().st_size > 0, f"{name} saved no {pattern} in its temporary folder"
