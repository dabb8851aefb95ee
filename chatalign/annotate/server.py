"""The annotation page's server: the standard library's threaded HTTP server on 127.0.0.1 only, one page with no
external assets (it works offline), a small JSON API. Every label is in the labels file before the answer to
its request leaves: a crashed server or a closed tab loses no label that the page showed as saved."""

from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from chatalign.annotate.labels import SIDES, LabelError, LabelStore, person, shown_order, to_preference
from chatalign.data_schemas import Comparison

MAX_BODY = 64 * 1024  # a label is a few hundred bytes; a note is short


class AnnotationServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, comparisons: list[Comparison], store: LabelStore, port: int = 0):
        super().__init__(("127.0.0.1", port), AnnotationHandler)
        self.comparisons = comparisons
        self.by_id = {c.id: c for c in comparisons}
        self.store = store
        self.page = resources.files("chatalign.annotate").joinpath("page.html").read_bytes()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def state(self, annotator: str) -> dict:
        """Progress of one annotator and the next comparison they have not labelled (None when done)."""
        done = self.store.labelled_by(annotator)
        todo = next((c for c in self.comparisons if c.id not in done), None)
        return {"annotator": annotator, "total": len(self.comparisons), "done": len(done & set(self.by_id)),
                "item": None if todo is None else shown_item(todo, annotator)}

    def label(self, body: dict) -> dict:
        annotator = person(str(body.get("annotator", "")))
        comp = self.by_id.get(str(body.get("id")))
        if comp is None:
            raise LabelError(f"comparison {body.get('id')!r} is not in this file")
        side = body.get("better")
        if side not in SIDES:
            raise LabelError(f"better: {side!r} is not a side (left or right)")
        shown = shown_order(comp.id, annotator)
        note = body.get("note")
        pref = to_preference(comp, shown[SIDES.index(side)], str(body.get("strength")), str(body.get("safety")),
                             annotator, shown, note if isinstance(note, str) else None)
        self.store.save(pref)
        return self.state(annotator)


def shown_item(comp: Comparison, annotator: str) -> dict:
    """What the page shows: the prompt and the two answers in this annotator's order; not which model wrote
    which (the comparison is blind)."""
    left, right = shown_order(comp.id, annotator)
    return {"id": comp.id, "prompt": [m.model_dump() for m in comp.prompt],
            "left": comp.answers[left].text, "right": comp.answers[right].text}


class AnnotationHandler(BaseHTTPRequestHandler):
    server: AnnotationServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass  # one line per request would bury the URL the command printed

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        if url.path in ("/", "/index.html"):
            return self.reply(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        if url.path == "/api/state":
            name = (parse_qs(url.query).get("annotator") or [""])[0]
            return self.answer(lambda: self.server.state(person(name)))
        return self.reply_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {url.path}"})

    def do_POST(self) -> None:  # noqa: N802
        if urlparse(self.path).path != "/api/label":
            return self.reply_json(HTTPStatus.NOT_FOUND, {"error": f"no such action: {self.path}"})
        origin = self.headers.get("Origin")
        if origin is not None and origin.rstrip("/") + "/" not in (self.server.url, self.server.url.replace(
                "127.0.0.1", "localhost")):
            return self.reply_json(HTTPStatus.FORBIDDEN, {"error": f"labels are taken from this page only, "
                                                                   f"not from {origin}"})
        size = int(self.headers.get("Content-Length") or 0)
        if size > MAX_BODY:
            return self.reply_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "label too large"})
        try:
            body = json.loads(self.rfile.read(size) or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return self.reply_json(HTTPStatus.BAD_REQUEST, {"error": f"not JSON: {exc}"})
        if not isinstance(body, dict):
            return self.reply_json(HTTPStatus.BAD_REQUEST, {"error": "expected a JSON object"})
        return self.answer(lambda: self.server.label(body))

    def answer(self, make) -> None:
        try:
            self.reply_json(HTTPStatus.OK, make())
        except LabelError as exc:
            self.reply_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except OSError as exc:  # a full disk, a labels folder gone: the page says "not saved" and keeps the label
            self.reply_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"the label was not saved: {exc}"})

    def reply_json(self, status: HTTPStatus, obj: dict) -> None:
        self.reply(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json")

    def reply(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


def serve(comparisons: list[Comparison], labels: Path, port: int) -> AnnotationServer:
    return AnnotationServer(comparisons, LabelStore(labels), port)
