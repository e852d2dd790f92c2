"""The domain: token format, records, lifecycle rules, scopes, the services and their errors; no AWS SDK, no HTTP."""
