"""HTTP front of demo-web: `python3 -m app.server` listens on $PORT (8080).

GET /            -> {"message": ..., "version": ...}
GET /health      -> {"status": "ok"}
GET /greet?name= -> {"message": "Hello, <name>!"}
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from app.greeting import greeting, health

VERSION_FILE = Path(__file__).resolve().parent.parent / "VERSION"


def version() -> str:
    try:
        return VERSION_FILE.read_text().strip()
    except OSError:
        return "dev"


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, so the environment's router can reuse its connections;
    # a buffered writer, so a response (head and body) leaves in one
    # write; TCP_NODELAY, so it leaves at once.
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _discard_body(self) -> None:
        # On a kept-alive connection a body left unread would be taken for
        # the next request.
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
        elif length > 0:
            self.rfile.read(length)

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self._discard_body()
        url = urlparse(self.path)
        if url.path == "/health":
            self._send(200, health())
        elif url.path == "/greet":
            name = parse_qs(url.query).get("name", [""])[0]
            self._send(200, {"message": greeting(name)})
        elif url.path == "/":
            self._send(200, {"message": greeting(), "version": version()})
        else:
            self._send(404, {"error": f"no route {url.path}"})

    def log_message(self, fmt: str, *args) -> None:
        print(f"{self.address_string()} {fmt % args}", flush=True)


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    # A listen backlog of 128, not socketserver's 5: a burst of new
    # connections would otherwise wait a second for a SYN retransmit.
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"demo-web {version()} listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
