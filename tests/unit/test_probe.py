"""``python -m ioc.probe``: exit 0 on 2xx, 1 with the reason otherwise, 2 on bad use."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ioc.probe import main
from tests.utils.services import free_port


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/healthz" else 503
        self.send_response(status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_healthy_answer_is_zero(server: str) -> None:
    assert main([f"{server}/healthz"]) == 0


def test_unhealthy_answer_is_one_with_the_status(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([f"{server}/readyz", "2"]) == 1
    assert "answered 503" in capsys.readouterr().err


def test_nothing_listening_is_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([f"http://127.0.0.1:{free_port()}/healthz", "1"]) == 1
    assert "did not answer" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["http://a", "b", "c"], ["http://127.0.0.1:1/", "soon"]])
def test_bad_use_is_two(argv: list[str]) -> None:
    assert main(argv) == 2


def test_not_a_url_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["file:///etc/passwd"]) == 1
    assert "not an http(s) URL" in capsys.readouterr().err
