"""``python -m tinyclap.prepare NAME --data_folder DIR``: see :func:`tinyclap.prepare.main`."""

import sys

from tinyclap.prepare import cli

if __name__ == "__main__":
    sys.exit(cli())
