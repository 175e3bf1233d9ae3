"""MkDocs hook: serve the repository's results and recipe READMEs inside the site.

MkDocs only publishes files under ``docs/``. The measured results live in
``results/`` (each folder a README with its command, tables and plots), the
dataset recipes in ``recipes/*/README.md`` and the runtime's install notes in
``tinyclap-runtime/README.md``. This hook adds those files to the site at their
repository paths (``results/demo/training_curves.png`` is served as
``results/demo/training_curves.png``), and rewrites links that leave ``docs/``
towards them, so a page links to them as it does on GitHub
(``../../results/sweep/README.md`` from ``docs/how-to/sweep.md``). A link to
anything else outside ``docs/`` is left alone, and ``mkdocs build --strict``
fails on it, as it does on a missing page or picture.

Example
-------
>>> site_uri("results/sweep/README.md")
'results/sweep/README.md'
>>> site_uri("docs/how-to/prune.md")
'how-to/prune.md'
>>> site_uri("tinyclap/teachers/base.py") is None
True
>>> rewrite_links("[t](../../results/sweep/README.md)", "docs/how-to/sweep.md", "how-to/sweep.md")
'[t](../results/sweep/README.md)'
"""

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
# repository folder -> which of its files the site serves
MOUNTS = {
    "results": ("*.md", "*.png", "*.svg", "*.json", "*.csv"),
    "recipes": ("README.md",),
    "tinyclap-runtime": ("README.md",),
}
LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def site_uri(repo_path):
    """Where a repository file is served in the site, or None if it is not."""
    if repo_path.startswith("docs/"):
        return repo_path[len("docs/") :]
    if repo_path.split("/", 1)[0] in MOUNTS:
        return repo_path
    return None


def rewrite_links(markdown, page_repo_path, page_uri):
    """Point relative links that leave ``docs/`` at the files the site serves."""

    def fix(match):
        target = match.group(2)
        path, _, anchor = target.partition("#")
        if not path or "://" in path or path.startswith(("/", "mailto:")):
            return match.group(0)
        repo_path = posixpath.normpath(posixpath.join(posixpath.dirname(page_repo_path), path))
        uri = site_uri(repo_path)
        if uri is None:
            return match.group(0)
        new = posixpath.relpath(uri, posixpath.dirname(page_uri) or ".")
        return match.group(1) + new + (f"#{anchor}" if anchor else "") + match.group(3)

    return LINK.sub(fix, markdown)


def on_files(files, config):
    """Add the mounted repository files to the site."""
    for top, patterns in MOUNTS.items():
        found = {p for pattern in patterns for p in (ROOT / top).rglob(pattern) if p.is_file()}
        for path in sorted(found):
            uri = path.relative_to(ROOT).as_posix()
            if files.get_file_from_path(uri) is None:
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Rewrite the page's links into the mounted files (see the module docstring)."""
    uri = page.file.src_uri
    repo_path = uri if site_uri(uri) == uri and uri.split("/")[0] in MOUNTS else f"docs/{uri}"
    return rewrite_links(markdown, repo_path, uri)
