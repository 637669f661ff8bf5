"""`python -m skipline` runs the CLI."""

from skipline.cli import main

main()
