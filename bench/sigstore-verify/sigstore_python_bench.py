"""sigstore-python (pinned in PY_TOOLS) verifying the same bundles offline through its Python
API, with the same method as kibaship's bench_verify: the Verifier is built once, each
iteration parses the bundle JSON and verifies it, and rates are per CPU-second of this thread
(time.thread_time), so process start-up and other load on the machine are not counted.
Prints one JSON object per line.

Usage: python sigstore_python_bench.py <conformance dir> <production trusted_root.json> <seconds> <case>...
"""

import json
import sys
import time
from pathlib import Path

from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity

IDENTITY = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"
ROUNDS = 6
TOOL = "sigstore-python 4.5.1"


def rate(seconds, f):
    start_wall = time.perf_counter()
    start_cpu = time.thread_time()
    n = 0
    while time.perf_counter() - start_wall < seconds:
        for _ in range(10):
            f()
        n += 10
    return n / max(time.thread_time() - start_cpu, 1e-9)


def main():
    corpus = Path(sys.argv[1])
    production_root = sys.argv[2]
    seconds = float(sys.argv[3])
    artifact = (corpus / "a.txt").read_bytes()
    policy = Identity(identity=IDENTITY, issuer=ISSUER)
    for case in sys.argv[4:]:
        d = corpus / case
        root = d / "trusted_root.json"
        verifier = Verifier(trusted_root=TrustedRoot.from_file(str(root if root.exists() else production_root)))
        raw = (d / "bundle.sigstore.json").read_bytes()

        def once():
            bundle = Bundle.from_json(raw)
            if bundle._dsse_envelope is not None:
                verifier.verify_dsse(bundle, policy)
            else:
                verifier.verify_artifact(artifact, bundle, policy)

        try:
            once()
        except Exception as e:  # a peer's refusal is reported, not fatal
            print(json.dumps({"tool": TOOL, "case": case, "error": f"{type(e).__name__}: {e}"}), flush=True)
            continue
        for _ in range(20):
            once()
        best = max(rate(seconds / ROUNDS, once) for _ in range(ROUNDS))
        print(json.dumps({"tool": TOOL, "case": case, "rate": best}), flush=True)


if __name__ == "__main__":
    main()
