"""Griffe extension: read tinyclap's ``Example`` docstring sections as numpy ``Examples``.

The library's docstrings head their doctests ``Example`` (singular), which
griffe's numpy parser does not know: it would render the doctest as prose, where
an output such as ``[16000, 16000]`` after a line ending in ``]`` reads as a
Markdown reference link. Renaming the heading here keeps the source as it is
and renders the doctests as code. ``mkdocs.yml`` loads this file through
mkdocstrings' ``extensions`` option.

Example
-------
>>> text = "Sum." + chr(10) * 2 + "Example" + chr(10) + "-------"
>>> as_examples_section(text).split(chr(10))[2:]
['Examples', '--------']
"""

import re

import griffe

HEADING = re.compile(r"^(\s*)Example\n(\s*)-------$", re.MULTILINE)


def as_examples_section(text):
    """``text`` with every ``Example`` section heading renamed ``Examples``."""
    return HEADING.sub(r"\1Examples\n\2--------", text)


class ExampleSections(griffe.Extension):
    """Rename ``Example`` section headings before the docstrings are parsed."""

    def on_object(self, *, obj, **kwargs):
        """Rewrite the object's docstring in place."""
        if obj.docstring is not None:
            obj.docstring.value = as_examples_section(obj.docstring.value)
