"""``python -m tinyclap.prepare NAME --data_folder DIR``: see :func:`tinyclap.prepare.main`."""

from tinyclap.prepare import main

if __name__ == "__main__":
    main()
