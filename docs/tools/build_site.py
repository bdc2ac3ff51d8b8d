"""Build the documentation site: generate its pages, then ``mkdocs build --strict``.

1. every tutorial ``docs/tutorials/NN_topic.py`` is executed and rendered into
   ``<docs_dir>/generated/tutorials/`` (render_tutorials.py);
2. the command-line reference is generated into ``<docs_dir>/generated/cli.md``
   (cli_reference.py);
3. MkDocs builds the site from mkdocs.yml in strict mode: a broken link, anchor or API
   reference fails the build.

``docs/generated/`` is gitignored and rebuilt from scratch each time. ``make docs`` runs
``python docs/tools/build_site.py``; ``make docs-serve`` adds ``--serve`` (steps 1 and 2, then
``mkdocs serve``). tests/docs/test_site.py builds a copy of ``docs/`` with ``--docs-dir`` and
``--site-dir``, and ``--execute 00_quickstart.py``: the other tutorials are rendered without
running them (tests/docs/test_tutorials.py runs each), so their links are still checked.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parents[1]
CONFIG = ROOT / "mkdocs.yml"
GENERATED = "generated"

sys.path.insert(0, str(TOOLS))
import cli_reference
import render_tutorials


def generate(docs_dir: Path, *, execute: str = "*") -> list[Path]:
    """Write the generated pages into ``docs_dir/generated`` (removed first).

    Parameters
    ----------
    docs_dir : Path
        The site's source folder (``docs/`` or a copy of it).
    execute : str, default "*"
        A glob: the tutorials whose file name matches it are executed; the others are
        rendered without running them (their cells, no outputs).

    Returns
    -------
    list of Path
        The pages written.
    """
    out = docs_dir / GENERATED
    if out.exists():
        shutil.rmtree(out)
    pages = []
    for tutorial in render_tutorials.tutorial_files():
        t0 = time.perf_counter()
        run = fnmatch.fnmatch(tutorial.name, execute)
        pages.append(render_tutorials.render(tutorial, out / "tutorials", execute=run))
        what = f"{time.perf_counter() - t0:.1f} s" if run else "not executed"
        print(f"tutorial {tutorial.name}: {what}", flush=True)
    cli_page = out / "cli.md"
    cli_page.write_text(cli_reference.markdown(), encoding="utf-8")
    pages.append(cli_page)
    print(f"command-line reference: {cli_page}", flush=True)
    return pages


def mkdocs(command: str, docs_dir: Path, site_dir: Path | None) -> int:
    """Run ``mkdocs build --strict`` (or ``serve``) on mkdocs.yml with ``docs_dir``.

    MkDocs resolves ``docs_dir`` against mkdocs.yml's folder, so another folder is passed
    through a small config file that inherits mkdocs.yml.
    """
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about MkDocs 2
    config = CONFIG
    if docs_dir.resolve() != (ROOT / "docs").resolve():
        config = docs_dir.parent / "mkdocs.yml"
        text = CONFIG.read_text(encoding="utf-8")
        # the same file with absolute paths: docs_dir, the hooks, the handler's sources
        text = text.replace("docs_dir: docs\n", f"docs_dir: {docs_dir.resolve()}\n")
        text = text.replace("- docs/tools/", f"- {TOOLS}/")
        text = text.replace("paths: [src]", f"paths: [{ROOT / 'src'}]")
        config.write_text(text, encoding="utf-8")
    args = [sys.executable, "-m", "mkdocs", command, "-f", str(config)]
    if command == "build":
        args += ["--strict"] + (["-d", str(site_dir)] if site_dir is not None else [])
    return subprocess.call(args, cwd=ROOT, env=env)


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module's docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs-dir", type=Path, default=ROOT / "docs")
    parser.add_argument("--site-dir", type=Path, default=None, help="default: mkdocs.yml's")
    parser.add_argument("--serve", action="store_true", help="mkdocs serve instead of build")
    parser.add_argument("--execute", default="*", metavar="GLOB",
                        help="execute only the tutorials whose file name matches (default: all)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    generate(args.docs_dir, execute=args.execute)
    rc = mkdocs("serve" if args.serve else "build", args.docs_dir, args.site_dir)
    if rc == 0 and not args.serve:
        print(f"site built in {time.perf_counter() - t0:.0f} s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
