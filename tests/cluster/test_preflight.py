"""The preflight's execution-API check against a real HTTP server on loopback: a busy api-server
that drops one request is asked again; an HTTP error is an answer and fails at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.cluster.api import ApiError
from pipeline.cluster.preflight import HEALTH_TRIES, _health


@contextmanager
def api_server(replies: list[int | None]) -> Iterator[tuple[str, list[str]]]:
    """Answers requests in turn: None drops the connection unanswered, a number is the status
    (200 with a healthy body). Yields the URL and the paths it was asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            asked.append(self.path)
            status = replies[min(len(asked), len(replies)) - 1]
            if status is None:
                self.close_connection = True
                self.connection.close()
                return
            body = json.dumps({"status": "healthy"} if status == 200 else {"detail": "down"})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/execution/health", asked
    finally:
        server.shutdown()
        server.server_close()


def test_a_busy_api_server_that_drops_a_request_is_asked_again() -> None:
    with api_server([None, 200]) as (url, asked):
        assert _health(url) == {"status": "healthy"}
    assert asked == ["/execution/health"] * 2


def test_an_api_server_that_never_answers_fails_after_its_tries() -> None:
    with api_server([None]) as (url, asked), pytest.raises(ApiError, match="no answer"):
        _health(url)
    assert len(asked) == HEALTH_TRIES


def test_an_http_error_is_an_answer_and_is_not_asked_again() -> None:
    with api_server([503, 200]) as (url, asked), pytest.raises(ApiError, match="HTTP 503"):
        _health(url)
    assert len(asked) == 1
