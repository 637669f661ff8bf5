from skipline.cli.main import main

__all__ = ["main"]
