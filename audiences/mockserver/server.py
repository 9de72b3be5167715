"""The mock platforms over real HTTP: ``MockServer`` in-process for tests, ``serve`` in the foreground.

Standard library only (``ThreadingHTTPServer``). Each request runs in its own thread, so a ``timeout`` fault
delays one answer without holding up the others; ``stop`` waits for answers still in flight. Nothing about a
request reaches stderr: the standard per-request lines (which hold the query string, and so maybe a token)
are replaced by debug records of method, path and status.

Run it: ``python -m audiences.mockserver.server --port 8765 [--token-env MOCK_TOKEN]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import urlsplit

from audiences.mockserver.app import handle
from audiences.mockserver.state import MockState

_LOG = logging.getLogger(__name__)
#: most bytes one request body may have (a 10,000-row Meta payload of 15 hashed keys is ~10 MB)
MAX_BODY = 64 * 1024 * 1024


class _HTTPServer(ThreadingHTTPServer):
    """Request threads are joined on close, so that ``stop`` returns only when every answer was sent."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], state: MockState, token: str | None) -> None:
        super().__init__(address, _Handler)
        self.mock_state = state
        self.mock_token = token

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (socket.getfqdn), which can take seconds: skip it
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that gave up (a timeout fault) makes the late answer fail: expected, not worth a traceback
        _LOG.debug("mock server: the connection from %s failed", client_address[0], exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, lets ``app.handle`` answer it, writes the JSON answer."""

    server: _HTTPServer
    #: seconds a silent client may hold a connection (it would otherwise block ``stop``)
    timeout = 30

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def _answer(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.send_error(400 if length < 0 else 413)
            return
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        state, token = self.server.mock_state, self.server.mock_token
        status, extra, payload = handle(state, self.command, self.path, headers, body, token=token)
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        _LOG.debug("%s %s -> %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:
        # the arguments may quote the request line, query string included: only the template is logged
        _LOG.debug("mock server: %s", format)


class MockServer:
    """The mock Meta and TikTok platforms on a local port, started and stopped from the calling process.

    Example::

        with MockServer() as server:
            requests.post(f"{server.base_url}/v21.0/act_1/customaudiences", ...)
            server.state()["meta"]["audiences"]
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        """``port`` 0 picks a free port; ``token``, when given, is the only token accepted."""
        self.host, self.port = host, port
        self._state = MockState()
        self._token = token
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MockServer:
        """Listen and answer in a background thread; returns the server itself."""
        if self._httpd is not None:
            raise RuntimeError("the mock server is already running")
        self._httpd = _HTTPServer((self.host, self.port), self._state, self._token)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="mock-platform",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, wait for answers in flight, close the socket; calling it twice does no harm."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join()

    @property
    def base_url(self) -> str:
        """``http://host:port``; Meta lives under ``/vNN.N``, TikTok under ``/open_api/v1.3``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def state(self) -> dict[str, Any]:
        """Everything the platforms hold, the same dict as ``GET /__mock__/state``."""
        return self._state.snapshot()

    def add_fault(self, kind: str, count: int = 1, **options: Any) -> None:
        """Switch a fault on for the next ``count`` calls it applies to; ValueError for an unknown kind."""
        self._state.add_fault(kind, count, **options)

    def reset(self) -> None:
        """Forget every audience, product set, file, logged request and pending fault."""
        self._state.clear()

    def __enter__(self) -> MockServer:
        return self if self._httpd is not None else self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def serve(host: str = "127.0.0.1", port: int = 8765, token: str | None = None) -> None:
    """Run the mock in the foreground until Ctrl-C or SIGTERM; prints its base URL first."""
    stopping = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with MockServer(host, port, token) as server:
            print(server.base_url, flush=True)
            print(
                "Meta under /v21.0 (any version), TikTok under /open_api/v1.3; Ctrl-C stops", file=sys.stderr
            )
            try:
                while not stopping.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--host``, ``--port``, and ``--token-env`` naming the variable that holds the token."""
    parser = argparse.ArgumentParser(description="Mock Meta Graph and TikTok audience APIs on a local port.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--token-env", help="environment variable holding the only token to accept")
    args = parser.parse_args(argv)
    token = None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            parser.error(f"--token-env {args.token_env}: that environment variable is empty or not set")
    serve(args.host, args.port, token)


if __name__ == "__main__":
    main()
