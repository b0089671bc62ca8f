"""``python -m aezoo``: the same as the ``aezoo`` command."""

from aezoo.command import main

if __name__ == "__main__":
    main()
