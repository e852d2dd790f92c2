"""The API token service's shared code, shipped as the functions' Lambda layer.

Three parts, whose imports only point down: `domain` imports nothing else of the package;
`storage` and `http` import `domain` (and the leaf `observability`), never each other.
`config` reads the environment, once; `wiring` puts the parts together for the handlers.
"""
