"""The running service: Temporal connection, settings and metrics shared by the worker and CLI."""
