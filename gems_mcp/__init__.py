"""gems-mcp: an MCP server that runs the GEMS generate-verify-refine loop on a local diffusion model."""

__version__ = "0.1.0"

__all__ = ["__version__", "main"]


def main() -> None:
    """Console entry point (``gems-mcp``)."""
    from gems_mcp.cli import main as cli_main

    raise SystemExit(cli_main())
