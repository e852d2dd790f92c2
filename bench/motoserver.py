"""`python -m bench.motoserver`: moto's threaded server on a free loopback port.

Prints the port on its first line, serves until its standard input closes. The bench runs
it in its own process so that the server's Python work does not share a GIL (nor a core)
with the client code being measured, as a real DynamoDB endpoint would not.
"""

from __future__ import annotations

import logging
import sys

from moto.server import ThreadedMotoServer


def start() -> tuple[str, ThreadedMotoServer]:
    """A started server on a free loopback port, and its endpoint."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return f"http://127.0.0.1:{server.get_host_and_port()[1]}", server


def main() -> None:
    endpoint, server = start()
    print(endpoint.rpartition(":")[2], flush=True)
    sys.stdin.read()  # until the bench closes the pipe
    server.stop()


if __name__ == "__main__":
    main()
