#!/usr/bin/env python3
"""Just enough of the Roboflow API on 127.0.0.1 for inference-cli's bucket mode to
reach its ingest request: the workspace lookup and an accepting ingest endpoint.
Usage: fake_roboflow.py PORT (runs until killed)."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer({"workspace": "bench"} if self.path.split("?")[0] in ("", "/") else {"count": 0, "shards": []})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.answer({"ingestId": "bench", "shardIds": ["s0"]})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
