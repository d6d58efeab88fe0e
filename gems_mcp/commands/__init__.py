"""Command-line subcommands that print to stdout (never imported by the server)."""
