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
    # TCP_NODELAY, so a response's head and body are not held apart.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
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
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"demo-web {version()} listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
