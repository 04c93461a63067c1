"""`tfx-tabular` subcommands for serving (registered by pipeline/cli.py)."""


def add_commands(subparsers) -> None:
    """Adds this area's subcommands; each sets `func` to a handler taking args and returning an exit code."""
