"""The documentation site: it builds in strict mode, documents every public name, its code runs.

Building needs the docs extra (mkdocs, mkdocs-material, mkdocstrings[python]): the build
test skips without it, or fails when DLSCRATCH_REQUIRE_DOCS=1 (CI). The other tests need
nothing beyond the package.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_or_skip

import dlscratch
from dlscratch.datasets import DatasetNotFoundError, load_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TOUR = sorted(path.name for path in (DOCS / "tour").glob("*.md"))

# modules whose __all__ the API reference must cover, besides the package's own
DOCUMENTED_MODULES = (
    "dlscratch",
    "dlscratch.functions",
    "dlscratch.gradient",
    "dlscratch.util",
    "dlscratch.book",
    "dlscratch.layers",
    "dlscratch.nets",
    "dlscratch.optim",
    "dlscratch.train",
    "dlscratch.datasets",
    "dlscratch.serialize",
    "dlscratch.checkpoint",
    "dlscratch.plot",
    "dlscratch.graph_picture",
)


def _documented_objects() -> list[object]:
    """The objects named by the ``::: identifier`` lines of the API pages."""
    objects = []
    for page in sorted((DOCS / "api").glob("*.md")):
        for identifier in re.findall(r"^::: (\S+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE):
            module_name, _, name = identifier.rpartition(".")
            try:
                objects.append(importlib.import_module(identifier))
            except ModuleNotFoundError:
                objects.append(getattr(importlib.import_module(module_name), name))
    return objects


def test_the_api_reference_documents_every_public_name():
    documented = _documented_objects()
    missing = []
    for module_name in DOCUMENTED_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            target = getattr(module, name)
            # constants and type aliases compare equal, classes and functions are the same object
            if not any(target is obj or (not callable(target) and target == obj) for obj in documented):
                missing.append(f"{module_name}.{name}")
    assert not missing, f"not in docs/api/*.md: {missing}"


def _included_sections() -> set[str]:
    sections = set()
    for page in DOCS.rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        sections |= set(re.findall(r'^--8<-- "README\.md:([\w-]+)"$', text, flags=re.MULTILINE))
    return sections


def test_the_readme_has_the_sections_the_docs_include():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _included_sections() == {"getting-started", "results", "performance"}
    for section in _included_sections():
        for end in ("start", "end"):
            marker = f"<!-- --8<-- [{end}:{section}] -->"
            assert marker in readme, f"README.md needs the line {marker} around the section docs include"


def test_the_readme_links_to_the_examples_and_the_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("examples/", "docs/index.md", "mkdocs"):
        assert target in readme, f"README.md should point to {target}"


@pytest.mark.parametrize("page", TOUR)
def test_the_code_of_each_tour_page_runs(page, tmp_path, monkeypatch):
    """The page's ```python blocks run in order, in one namespace, as a reader would paste them."""
    text = (DOCS / "tour" / page).read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    if "load_fashion_mnist" in text:
        try:
            load_fashion_mnist(download=False)
        except DatasetNotFoundError:
            require_or_skip("Fashion-MNIST", "DLSCRATCH_REQUIRE_DATA")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": f"docs.tour.{page}"}
    for index, block in enumerate(blocks):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(block, f"docs/tour/{page}, block {index}", "exec"), namespace)


def test_the_summary_shown_in_the_tour_is_what_summary_prints():
    text = (DOCS / "tour" / "ch5.md").read_text(encoding="utf-8")
    block = r'^```text\n(Model: "TwoLayerNet".*?)^```$'
    shown = re.search(block, text, flags=re.MULTILINE | re.DOTALL).group(1)
    assert shown.rstrip("\n") == dlscratch.TwoLayerNet(784, 50, 10, seed=0).summary(print_fn=None)


@pytest.mark.slow
def test_the_site_builds_in_strict_mode_without_warnings(tmp_path):
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "material"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            require_or_skip(f"{module} (pip install -e '.[docs]')", "DLSCRATCH_REQUIRE_DOCS")
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    result = subprocess.run(
        command,
        cwd=ROOT,  # mkdocs.yml is found here, and so are the README sections the pages include
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "WARNING" not in log, log
    reference = (site / "api" / "nets" / "index.html").read_text(encoding="utf-8")
    assert "summary" in reference and "TwoLayerNet" in reference
    assert (site / "images" / "apple-orange.svg").stat().st_size > 0
