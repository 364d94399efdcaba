"""The documentation site: it builds in strict mode, documents every public name, its code runs.

Building needs the docs extra (mkdocs, mkdocs-material, mkdocstrings[python],
mkdocs-jupyter) and Fashion-MNIST, since the build executes the example notebooks: the
tests of the built site skip without them, or fail when DLSCRATCH_REQUIRE_DOCS=1 /
DLSCRATCH_REQUIRE_DATA=1 (CI). The other tests need nothing beyond the package.
"""

from __future__ import annotations

import base64
import contextlib
import html
import importlib
import importlib.util
import inspect
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
NOTEBOOKS = sorted(path.stem for path in (ROOT / "examples").glob("*.ipynb"))
SIGNATURE = r'\s*<div class="doc-signature highlight">(.*?)</pre>'  # what mkdocstrings puts under a heading
STDERR = r'data-mime-type="application/vnd\.jupyter\.stderr"'  # how mkdocs-jupyter marks a cell's stderr
# a numpy-style Parameters section as mkdocstrings renders it: a table, one row per name
PARAMETERS = r'<span class="doc-section-title">Parameters:</span>.*?</table>'
PARAMETER_NAME = r'<tr class="doc-section-item">\s*<td>\s*<code>([^<]+)</code>'

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
    "dlscratch.validation",
    "dlscratch.schedules",
    "dlscratch.augment",
    "dlscratch.metrics",
    "dlscratch.images",
    "dlscratch.datasets",
    "dlscratch.serialize",
    "dlscratch.checkpoint",
    "dlscratch.plot",
    "dlscratch.graph_picture",
)


def _api_entries() -> list[tuple[str, str, object]]:
    """(page, identifier, object) for each ``::: identifier`` line of the API pages."""
    entries = []
    for page in sorted((DOCS / "api").glob("*.md")):
        for identifier in re.findall(r"^::: (\S+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE):
            module_name, _, name = identifier.rpartition(".")
            try:
                target = importlib.import_module(identifier)
            except ModuleNotFoundError:
                target = getattr(importlib.import_module(module_name), name)
            entries.append((page.stem, identifier, target))
    return entries


def _documented_objects() -> list[object]:
    """The objects named by the ``::: identifier`` lines of the API pages."""
    return [target for _, _, target in _api_entries()]


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
    assert _included_sections() == {"getting-started", "install", "results", "performance"}
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


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, str]:
    """The site as CI builds it (the folder and the build's log), example notebooks executed."""
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "material", "mkdocs_jupyter"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            require_or_skip(f"{module} (pip install -e '.[docs]')", "DLSCRATCH_REQUIRE_DOCS")
    try:
        load_fashion_mnist(download=False)
    except DatasetNotFoundError:
        require_or_skip("Fashion-MNIST, which the example notebooks read", "DLSCRATCH_REQUIRE_DATA")
    folder = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)]
    result = subprocess.run(
        command,
        cwd=ROOT,  # mkdocs.yml is found here, and so are the README sections the pages include
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{log}")
    return folder, log


def _page(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_site_builds_in_strict_mode_without_warnings(site):
    folder, log = site
    # mkdocs's own warnings; lines that the notebooks' kernels log ("[IPKernelApp] ...") are not the site's
    warnings = [line for line in log.splitlines() if line.startswith("WARNING")]
    assert not warnings, log
    reference = _page(folder, "api/nets")
    assert "summary" in reference and "TwoLayerNet" in reference
    assert (folder / "images" / "apple-orange.svg").stat().st_size > 0


def _heading_end(page: str, identifier: str) -> int | None:
    """Where the heading mkdocstrings gives identifier ends on the page (None: it has none)."""
    heading = re.search(rf'<h(\d) id="{re.escape(identifier)}"', page)
    if heading is None:
        return None
    return page.index(f"</h{heading.group(1)}>", heading.end()) + len("</hN>")


def _signature_under_heading(page: str, identifier: str) -> str | None:
    """The text of the signature mkdocstrings shows right under the heading of identifier."""
    heading_end = _heading_end(page, identifier)
    if heading_end is None:
        return None
    signature = re.compile(SIGNATURE, flags=re.DOTALL).match(page, heading_end)
    return html.unescape(re.sub(r"<[^>]+>", "", signature.group(1))) if signature else None


def _parameters_under_heading(page: str, identifier: str) -> list[str]:
    """The names in the Parameters table of identifier's own docstring, between its heading
    and the next one (its members' headings, with their own sections, come after)."""
    heading_end = _heading_end(page, identifier)
    if heading_end is None:
        return []
    next_heading = re.compile(r"<h\d[ >]").search(page, heading_end)
    docstring = page[heading_end : next_heading.start() if next_heading else len(page)]
    table = re.search(PARAMETERS, docstring, flags=re.DOTALL)
    return re.findall(PARAMETER_NAME, table.group(0)) if table else []


def _classes_with_constructors() -> list[tuple[str, str, type]]:
    """(page, identifier, class) for each documented class with a constructor of its own."""
    classes = [
        (page, identifier, obj)
        for page, identifier, obj in _api_entries()
        # a warning or error that only names itself has Python's constructor, not one of its own
        if inspect.isclass(obj)
        and any("__init__" in vars(k) for k in obj.__mro__ if k.__module__.startswith("dlscratch"))
    ]
    assert len(classes) > 20
    return classes


@pytest.mark.slow
def test_the_api_reference_shows_every_constructor_with_its_parameters(site):
    folder, _ = site
    for page, identifier, cls in _classes_with_constructors():
        signature = _signature_under_heading(_page(folder, f"api/{page}"), identifier)
        assert signature, f"api/{page}: {identifier} is shown without its constructor's signature"
        assert signature.startswith(f"{cls.__name__}("), signature
        for parameter in inspect.signature(cls).parameters:
            assert re.search(rf"\b{parameter}\b", signature), f"{identifier}: {parameter} not in {signature}"


@pytest.mark.slow
def test_the_api_reference_describes_every_constructor_parameter(site):
    """Each parameter of a documented constructor has its row in the class's numpy-style
    Parameters section (type, default, meaning and shape), as mkdocstrings renders it."""
    folder, _ = site
    undescribed = {}
    for page, identifier, cls in _classes_with_constructors():
        described = _parameters_under_heading(_page(folder, f"api/{page}"), identifier)
        missing = [name for name in inspect.signature(cls).parameters if name not in described]
        if missing:
            undescribed[identifier] = missing
    assert not undescribed, f"not in the Parameters section of the class's docstring: {undescribed}"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_site_shows_each_example_notebook_with_its_figures(site, notebook):
    folder, _ = site
    assert f'href="{notebook}/"' in _page(folder, "examples"), "the examples page should link to it"
    page = _page(folder, f"examples/{notebook}")
    # the notebooks are stored without outputs: every figure here comes from executing them
    figures = re.findall(r'<img [^>]*src="data:image/(png|svg\+xml);base64,([^"]+)"', page)
    assert figures, f"examples/{notebook}: no figure on the page"
    for kind, data in figures:
        start = base64.b64decode(data)[:100]
        assert start.startswith(b"\x89PNG") if kind == "png" else b"<svg" in start, (kind, start)
    stderr = re.findall(rf"{STDERR}[^>]*>\s*<pre>(.*?)</pre>", page, flags=re.DOTALL)
    assert not stderr, f"examples/{notebook}: a cell printed to stderr: {stderr}"
