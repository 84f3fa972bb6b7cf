"""Workspaces, API keys (hashed at rest) and scopes."""
