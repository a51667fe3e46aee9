"""moto's server mode on loopback: real HTTP for the S3, SQS and KMS clients (AWS itself cannot
be reached from a test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def moto_server(ip_address: str = "127.0.0.1") -> Iterator[str]:
    """A moto server on a free port; yields its endpoint URL. Test credentials while it runs."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=ip_address, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                          "AWS_DEFAULT_REGION")}
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
