"""Health probe for containers: ``python -m ioc.probe URL [timeout_s]``.

The image has no curl; this asks ``URL`` once with the standard library and exits 0 on
a 2xx answer, 1 otherwise (with the reason on stderr), which is what Docker's
HEALTHCHECK and Kubernetes' exec probes read. Compose uses it for the API's ``/healthz``
and the worker's ``/metrics``.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def probe(url: str, *, timeout_s: float = 3.0) -> str | None:
    """None when ``url`` answers 2xx within the timeout, else the reason it did not."""
    if not url.startswith(("http://", "https://")):
        return f"not an http(s) URL: {url!r}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url} did not answer: {exc}"
    return None if 200 <= status < 300 else f"{url} answered {status}"


def main(argv: list[str]) -> int:
    """Exit status of one probe of ``argv[0]`` (timeout ``argv[1]`` seconds, default 3)."""
    if not 1 <= len(argv) <= 2:
        print("usage: python -m ioc.probe URL [timeout_s]", file=sys.stderr)
        return 2
    try:
        timeout_s = float(argv[1]) if len(argv) == 2 else 3.0
    except ValueError:
        print(f"timeout must be a number of seconds, not {argv[1]!r}", file=sys.stderr)
        return 2
    reason = probe(argv[0], timeout_s=timeout_s)
    if reason is not None:
        print(reason, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
