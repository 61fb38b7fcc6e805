"""`python -m bot`: the same CLI as the `incident-bot` console script."""

from bot.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
