"""The ``tinyclap`` command line: argument parsing and wiring only.

The work is done by the library below it; nothing in the library imports this package.
"""
