"""LocalStack in host mode, without Docker: a Lambda runtime executor that runs functions
as host processes (see ../README.md)."""
