#!/usr/bin/env python3
"""An HTTPS validating-admission endpoint on loopback for the kube-apiserver smoke test (Python stdlib).

    admission_recorder.py --port PORT --cert CERT --key KEY --out DIR

Each AdmissionReview POSTed to /validate is written to DIR/review-N.json. The answer allows the object,
except a Pod labelled kibaship.test/deny=true, which is denied with a message naming the pod.
"""

import argparse
import http.server
import json
import os
import ssl
import sys
import threading

MAX_BODY = 4 * 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    counter = {"n": 0}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.reply(200, {"ok": True})

        def do_POST(self):  # noqa: N802
            if self.path.split("?", 1)[0] != "/validate":
                self.reply(404, {"error": f"no handler for {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self.reply(400, {"error": f"bad Content-Length {length}"})
                return
            try:
                review = json.loads(self.rfile.read(length))
                request = review["request"]
            except (ValueError, KeyError, TypeError) as err:
                self.reply(400, {"error": f"not an AdmissionReview: {err}"})
                return
            with lock:
                counter["n"] += 1
                path = os.path.join(args.out, f"review-{counter['n']}.json")
            with open(path, "w") as f:
                json.dump(review, f, indent=2)
            obj = request.get("object") or {}
            labels = (obj.get("metadata") or {}).get("labels") or {}
            response = {"uid": request.get("uid"), "allowed": True}
            if request.get("kind", {}).get("kind") == "Pod" and labels.get("kibaship.test/deny") == "true":
                name = (obj.get("metadata") or {}).get("name", "?")
                response = {
                    "uid": request.get("uid"),
                    "allowed": False,
                    "status": {"code": 403, "message": f"kibaship smoke webhook denies pod {name}"},
                }
            self.reply(200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})

        def reply(self, code, doc):
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *fmt_args):
            sys.stderr.write("admission_recorder: " + (fmt % fmt_args) + "\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    sys.stderr.write(f"admission_recorder: serving https://127.0.0.1:{args.port}/validate\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
