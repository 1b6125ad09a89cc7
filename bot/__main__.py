"""`python -m bot` is the `sleuth` command."""

from bot.cli import main

main()
