#!/usr/bin/env python3
"""A stand-in for Alibaba Cloud EventBridge's PutEvents (POST /openapi/putEvents) on
127.0.0.1:8090 (or the port given as the argument): recomputes the acs signature the way the cloud does (HMAC-SHA1 over
METHOD, content-md5, content-type, date, the sorted x-acs-* headers and the path),
refuses a wrong one with 403, and prints the events it accepts."""
import base64
import hashlib
import hmac
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

KEYS = {"LTAI5tExampleKeyId": b"example-secret"}


class PutEvents(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        h = {k.lower(): v for k, v in self.headers.items()}
        key_id, _, signature = h.get("authorization", "").removeprefix("acs:").rpartition(":")
        if h.get("content-md5") and base64.b64encode(hashlib.md5(body).digest()).decode() != h["content-md5"]:
            return self.answer(400, {"code": "InvalidContentMD5"})
        acs = "".join(f"{k}:{h[k]}\n" for k in sorted(k for k in h if k.startswith("x-acs")))
        to_sign = f"POST\n{h.get('content-md5', '')}\n{h.get('content-type', '')}\n{h.get('date', '')}\n{acs}{self.path}"
        secret = KEYS.get(key_id, b"")
        expected = base64.b64encode(hmac.new(secret, to_sign.encode(), hashlib.sha1).digest()).decode()
        if not secret or not hmac.compare_digest(expected, signature):
            return self.answer(403, {"code": "SignatureDoesNotMatch"})
        events = json.loads(body)
        for e in events:
            print("aliyun got", e["id"], e["type"], "bus", e.get("aliyuneventbusname"),
                  "path", e.get("sluicepath"), json.dumps(e.get("data")), flush=True)
        self.answer(200, {"RequestId": "stub", "FailedEntryCount": 0,
                          "EntryList": [{"EventId": e["id"]} for e in events]})

    def answer(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8090), PutEvents).serve_forever()
