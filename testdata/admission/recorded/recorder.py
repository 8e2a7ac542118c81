#!/usr/bin/env python3
"""HTTPS admission endpoint on loopback that records every AdmissionReview and answers with a command.

    recorder.py --port PORT --cert CERT --key KEY --out DIR -- ANSWER-COMMAND...

Each body POSTed to /admit is written byte for byte to DIR/review-N.json, then piped to ANSWER-COMMAND,
whose stdout is the answer (HTTP 200, application/json). If the command fails the answer is HTTP 500, so the
API server's failurePolicy (Fail) refuses the request and the failure is visible.
"""

import argparse
import http.server
import os
import ssl
import subprocess
import sys
import threading

MAX_BODY = 6 * 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("answer", nargs="+")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    counter = {"n": 0}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.reply(200, b'{"ok":true}')

        def do_POST(self):  # noqa: N802
            if self.path.split("?", 1)[0] != "/admit":
                self.reply(404, b'{"error":"not found"}')
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self.reply(400, b'{"error":"bad Content-Length"}')
                return
            body = self.rfile.read(length)
            with lock:
                counter["n"] += 1
                path = os.path.join(args.out, f"review-{counter['n']:03d}.json")
            with open(path, "wb") as f:
                f.write(body)
            done = subprocess.run(args.answer, input=body, capture_output=True, timeout=20, check=False)
            if done.returncode != 0:
                sys.stderr.write(f"recorder: answer command failed for {path}: {done.stderr.decode(errors='replace')}\n")
                self.reply(500, b'{"error":"answer command failed"}')
                return
            with open(path + ".answer", "wb") as f:
                f.write(done.stdout)
            self.reply(200, done.stdout)

        def reply(self, code, body):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *fmt_args):
            sys.stderr.write("recorder: " + (fmt % fmt_args) + "\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    sys.stderr.write(f"recorder: serving https://127.0.0.1:{args.port}/admit\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
