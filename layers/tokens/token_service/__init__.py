"""Shared token logic for the API token service (shipped as a Lambda layer)."""
