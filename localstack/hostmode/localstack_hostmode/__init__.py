"""LocalStack plugins for running it in host mode, without Docker (see ../pyproject.toml)."""
