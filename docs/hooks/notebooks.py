"""mkdocs hook: the notebooks of examples/ become pages of the site, examples/<name>/.

They stay where learners and the tests find them (examples/, not docs/); mkdocs-jupyter,
whose turn comes after this hook's, executes each one at build time and shows it with its
figures, so the site shows what the notebooks do with this checkout's dlscratch.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

FOLDER = "examples"  # beside mkdocs.yml, and the notebooks' path in the site


@event_priority(100)  # before mkdocs-jupyter's on_files, which picks out the .ipynb files
def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    for notebook in sorted((root / FOLDER).glob("*.ipynb")):
        files.append(
            File(
                f"{FOLDER}/{notebook.name}",
                src_dir=str(root),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    return files
