"""Runs the service's real Lambda handlers the way API Gateway would, from template.yaml."""
