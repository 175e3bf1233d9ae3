"""Names the docs give in backticks exist: ``tinyclap.x.y`` objects and repository paths.

A renamed module, function or file leaves a page pointing at nothing; these
checks name the page and the stale reference.
"""

import importlib
import re

import pytest

from tests.docs.commands import DOC_FILES
from tests.helpers.tiny import REPO

DOTTED = re.compile(r"`(tinyclap(?:\.\w+)+)")
PATH = re.compile(r"`((?:tinyclap|tests|hparams|recipes|results|docs|tinyclap-runtime)/[\w/.-]*)`?")


def resolve(dotted):
    """The object a dotted ``tinyclap...`` name points at, or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute, None)
            if obj is None:
                return None
        return obj
    return None


@pytest.mark.parametrize("page", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_dotted_names_and_paths_exist(page):
    text = page.read_text(encoding="utf-8")
    stale = [n for n in sorted(set(DOTTED.findall(text))) if resolve(n) is None]
    stale += [p for p in sorted(set(PATH.findall(text))) if not (REPO / p).exists()]
    assert not stale, f"{page.relative_to(REPO)} names what does not exist: {stale}"


def test_the_checks_can_fail():
    assert resolve("tinyclap.teachers.load_teacher") is not None
    assert resolve("tinyclap.teachers.load_teachers") is None
    assert resolve("tinyclap.no_such_module.x") is None
    assert PATH.findall("see `tinyclap/teachers/base.py`") == ["tinyclap/teachers/base.py"]
