"""The docs site's structure: every page in the navigation, the hooks' own checks.

``make docs`` (``mkdocs build --strict``, in ``.ci/run``) fails on a broken link
or a missing page or picture; these tests keep what it does not check.
"""

import doctest
import importlib.util
import re

import pytest
import yaml

from tests.helpers.tiny import REPO

DOCS = REPO / "docs"


def _nav_pages(nav):
    for item in nav:
        if isinstance(item, str):
            yield item
        else:
            for value in item.values():
                yield from ([value] if isinstance(value, str) else _nav_pages(value))


def _config():
    class Loader(yaml.SafeLoader):
        pass

    # mkdocs.yml may hold !!python/name tags (Material's extensions); none are needed here
    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *a: None)
    return yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader)


def test_every_page_is_in_the_navigation_and_exists():
    nav = set(_nav_pages(_config()["nav"]))
    # results/*/README.md are served from the repository by docs/hooks/repo_files.py
    served = {page for page in nav if page.startswith("results/")}
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert nav - served == pages, {"not in nav": pages - nav, "missing": nav - served - pages}
    assert all((REPO / page).is_file() for page in served), served
    readmes = {p.relative_to(REPO).as_posix() for p in (REPO / "results").rglob("README.md")}
    assert readmes == served, {"results README not in nav": readmes - served}


def test_the_slots_of_the_other_pages_are_there():
    for name in ("microcontroller", "browser", "scale-out", "fast-cpu-inference"):
        assert (DOCS / "how-to" / f"{name}.md").is_file(), name


def test_api_reference_names_the_public_modules():
    text = "".join(p.read_text(encoding="utf-8") for p in (DOCS / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: (tinyclap[\w.]*)$", text, re.MULTILINE))
    for module in ("teachers", "students", "deploy.inference", "runtime", "audio", "zeroshot",
                   "pruning", "stages"):  # fmt: skip
        assert f"tinyclap.{module}" in documented, module
    for name in documented:  # a renamed module would leave a stale page behind
        assert importlib.util.find_spec(name) is not None, name


@pytest.mark.parametrize("hook", sorted((DOCS / "hooks").glob("*.py")), ids=lambda p: p.name)
def test_hook_doctests(hook):
    spec = importlib.util.spec_from_file_location(f"docs_hook_{hook.stem}", hook)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = doctest.testmod(module)
    assert result.attempted and not result.failed


def test_links_leaving_docs_are_rewritten_into_the_site():
    spec = importlib.util.spec_from_file_location("repo_files", DOCS / "hooks" / "repo_files.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = "docs/how-to/prune.md"
    md = ("![c](../../results/pruning/pruning_curve.png) [r](../../recipes/ESC50/README.md#x) "
          "[s](../../tinyclap/pruning/surgery.py) [p](export.md) [w](https://x.org/a.md)")  # fmt: skip
    assert hook.rewrite_links(md, page, "how-to/prune.md") == (
        "![c](../results/pruning/pruning_curve.png) [r](../recipes/ESC50/README.md#x) "
        "[s](../../tinyclap/pruning/surgery.py) [p](export.md) [w](https://x.org/a.md)"
    )  # the source-file link stays as written: mkdocs --strict then fails on it
