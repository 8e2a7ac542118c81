#!/usr/bin/env python3
"""A minimal OIDC issuer on loopback for the keyless-signing smoke test (Python stdlib + the openssl CLI).

    oidc_issuer.py serve --dir DIR --port PORT
        generates DIR/issuer-key.pem (RSA 2048) if missing and serves
        /.well-known/openid-configuration and /jwks on http://127.0.0.1:PORT
    oidc_issuer.py token --dir DIR --issuer URL --email EMAIL [--audience sigstore] [--lifetime 600]
        prints an RS256 ID token for EMAIL (email_verified=true) signed with DIR/issuer-key.pem

Fulcio fetches the discovery document and the JWKS from here and checks the token's signature, issuer,
audience, expiry and email claims, as it would for any OIDC provider.
"""

import argparse
import base64
import http.server
import json
import os
import subprocess
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_path(directory: str) -> str:
    return os.path.join(directory, "issuer-key.pem")


def ensure_key(directory: str) -> str:
    path = key_path(directory)
    if not os.path.exists(path):
        os.makedirs(directory, exist_ok=True)
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path],
            check=True,
            capture_output=True,
        )
    return path


def key_id(directory: str) -> str:
    return "kibaship-smoke-" + jwk(directory)["n"][:16]


def jwk(directory: str) -> dict:
    out = subprocess.run(
        ["openssl", "rsa", "-in", key_path(directory), "-noout", "-modulus"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not out.startswith("Modulus="):
        raise SystemExit(f"oidc_issuer: unexpected `openssl rsa -modulus` output: {out[:40]!r}")
    modulus = bytes.fromhex(out.split("=", 1)[1])
    return {"kty": "RSA", "alg": "RS256", "use": "sig", "n": b64url(modulus), "e": b64url((65537).to_bytes(3, "big"))}


def serve(directory: str, port: int) -> None:
    ensure_key(directory)
    issuer = f"http://127.0.0.1:{port}"
    key = dict(jwk(directory), kid=key_id(directory))
    documents = {
        "/.well-known/openid-configuration": {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/jwks",
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        },
        "/jwks": {"keys": [key]},
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            doc = documents.get(self.path.split("?", 1)[0])
            if doc is None:
                self.send_error(404)
                return
            body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            sys.stderr.write("oidc_issuer: " + (fmt % args) + "\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    sys.stderr.write(f"oidc_issuer: serving {issuer}\n")
    server.serve_forever()


def token(directory: str, issuer: str, email: str, audience: str, lifetime: int) -> str:
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": key_id(directory)}
    claims = {
        "iss": issuer,
        "sub": email,
        "aud": audience,
        "email": email,
        "email_verified": True,
        "iat": now,
        "nbf": now - 5,
        "exp": now + lifetime,
    }
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key_path(directory)],
        input=signing_input.encode(),
        check=True,
        capture_output=True,
    ).stdout
    return signing_input + "." + b64url(signature)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--dir", required=True)
    s.add_argument("--port", type=int, required=True)
    t = sub.add_parser("token")
    t.add_argument("--dir", required=True)
    t.add_argument("--issuer", required=True)
    t.add_argument("--email", required=True)
    t.add_argument("--audience", default="sigstore")
    t.add_argument("--lifetime", type=int, default=600)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.dir, args.port)
    else:
        print(token(args.dir, args.issuer, args.email, args.audience, args.lifetime))


if __name__ == "__main__":
    main()
