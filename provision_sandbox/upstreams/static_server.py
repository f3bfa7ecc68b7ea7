"""Static file server of the sandbox's offline upstreams (runs INSIDE the mirror container).

Stand-alone, standard library only: it is copied into the container and run with its python3.
Serves ROOT/<host name>/ for each request's Host header (download.docker.com, nvidia.github.io, ...)
over plain HTTP and over TLS with the sandbox CA's server certificate. Unknown host names get 404.

    python3 static_server.py --root /srv/www --http 80 --https 443 --cert server.pem --key server.key
"""

from __future__ import annotations

import argparse
import http.server
import os
import signal
import ssl
import sys
import threading


def site_for(host_header: str | None, sites: frozenset[str]) -> str | None:
    """The site a Host header names (port and trailing dot dropped, case folded), if served here."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):  # an IPv6 literal is never one of our names
        return None
    host = host.rsplit(":", 1)[0] if ":" in host else host
    host = host.rstrip(".")
    return host if host in sites else None


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler whose directory is chosen per request from the Host header."""

    server_version = "provision-sandbox-mirror"
    root = "/srv/www"

    def send_head(self):
        site = site_for(self.headers.get("Host"), frozenset(_sites(self.root)))
        if site is None:
            self.send_error(404, "unknown site (the sandbox mirror serves only its upstream names)")
            return None
        self.directory = os.path.join(self.root, site)
        return super().send_head()


class TLSServer(http.server.ThreadingHTTPServer):
    """TLS handshake in the worker thread, so one slow client never blocks accept()."""

    def __init__(self, address, handler, context: ssl.SSLContext):
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request, client_address):
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


def _sites(root: str) -> list[str]:
    try:
        return [name for name in os.listdir(root) if os.path.isdir(os.path.join(root, name))]
    except OSError:
        return []


def _serve(server: http.server.HTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/srv/www")
    parser.add_argument("--http", type=int, default=80)
    parser.add_argument("--https", type=int, default=443)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    handler = type("Handler", (SiteHandler,), {"root": args.root})
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    servers = [http.server.ThreadingHTTPServer(("", args.http), handler),
               TLSServer(("", args.https), handler, context)]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threads = [_serve(server) for server in servers]
    print(f"serving {', '.join(_sites(args.root)) or 'no sites'} on :{args.http} and :{args.https} (TLS)", flush=True)
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
