"""Placeholder entry point until the CLI lands."""


def main() -> None:
    raise SystemExit("skipline: CLI not built yet")
