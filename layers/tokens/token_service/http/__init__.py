"""HTTP: API Gateway events in, responses out: resolver, models, cursors, error table, claims, authorizer policies."""
