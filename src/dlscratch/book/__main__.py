"""python -m dlscratch.book SCRIPT.py [ARGS...]: run one of the book's scripts on dlscratch, unchanged."""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

from dlscratch.book import install_aliases

USAGE = "usage: python -m dlscratch.book SCRIPT.py [ARGS...]"
HELP = (
    "Runs a script of the book's repository as python would, its 'common' and 'dataset'\n"
    "imports taken from dlscratch (dlscratch.book.common, dlscratch.book.dataset)."
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the script as ``python SCRIPT.py ARGS`` would, with common/ and dataset/ from dlscratch.

    Like python itself, the script's folder comes first on sys.path (so ``from
    two_layer_net import TwoLayerNet`` finds the file beside it) and relative paths are
    read from the current folder: run it from the script's chapter folder, as the book does.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(f"{USAGE}\n\n{HELP}")
        return 0
    if not argv:
        print(f"dlscratch.book: name the book's script to run ({USAGE})", file=sys.stderr)
        return 2
    script = Path(argv[0])
    if not script.is_file():
        print(f"dlscratch.book: no such script: {script}", file=sys.stderr)
        return 2
    install_aliases()
    sys.argv = [str(script), *argv[1:]]
    sys.path.insert(0, str(script.resolve().parent))
    runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
