"""A real OpenAI-compatible chat-completions server for the tests: http.server on a free local port, answering
POST /v1/chat/completions with the generations of a chatalign HF backend (the embedded model's real greedy text).

    with serve(backend, api_key="k") as base_url:   # e.g. http://127.0.0.1:40123/v1
        ...

It checks the bearer key when given one, answers 404 elsewhere, and under /broken/v1 replies 200 with a body that
is not a chat-completions reply (for the client's error path).
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer


class _Handler(BaseHTTPRequestHandler):
    server_version = "chatalign-test/1"

    def log_message(self, *args):  # quiet test output
        pass

    def _send(self, code: int, obj) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        key = self.server.api_key
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            return self._send(401, {"error": {"message": "invalid api key"}})
        if self.path == "/broken/v1/chat/completions":
            return self._send(200, {"oops": True})
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        self.server.requests.append(request)
        text = self.server.backend.complete([request["messages"]], request.get("max_tokens"))[0]
        return self._send(200, {"id": "x", "object": "chat.completion", "model": request.get("model"),
                                "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": text}}]})


@contextmanager
def serve(backend, api_key: str | None = None):
    """Run the server in a thread for the duration of the block; yields its base URL (ending in /v1)."""
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    server.backend, server.api_key, server.requests = backend, api_key, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
