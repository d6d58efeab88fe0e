"""Outside the server's import path: the reference agent and the loop benchmark (the CLI imports them lazily)."""
