"""Clients of streamsvc: coordinator check-in client, terminal monitor, load generator.

Installed by the project's own `pyproject.toml`; the import name is `streamsvc_clients` so it
cannot collide with another package's bare `clients`.
"""
