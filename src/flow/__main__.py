"""``python -m flow``: the same as the ``flow`` command."""

from .entry import main

if __name__ == "__main__":
    main()
