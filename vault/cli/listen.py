"""The socket ``civicvault serve`` listens on, bound before gunicorn starts.

Left to itself, gunicorn meets a taken port by retrying for five seconds and
logging ten lines. ``serve`` binds the address first: a taken port, a host
that is not this machine's or a port that needs privileges ends in one
sentence and a non-zero exit, before anything heavy is loaded. The bound
socket is then handed to gunicorn by file descriptor (its documented
``fd://FD`` bind), so nothing can take the port between the check and the
start, and gunicorn's own retry loop never runs.
"""

import errno
import socket

from vault.core.errors import ConfigError

# gunicorn's default listen backlog: connections that arrive while the workers start wait in it.
BACKLOG = 2048


def _bare(host: str) -> str:
    """``::1`` for ``[::1]``, as a URL writes it."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def display(host: str, port: int) -> str:
    """``host:port`` as a URL writes it (IPv6 addresses in brackets)."""
    host = _bare(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _why(exc: OSError, host: str, port: int) -> str:
    """One sentence for the person who typed ``--host``/``--port`` (or ``make serve HOST= PORT=``)."""
    if isinstance(exc, socket.gaierror):
        return f"The host {host!r} does not resolve to an address: choose one with --host (make serve HOST=127.0.0.1)."
    if exc.errno == errno.EADDRINUSE:
        other = port + 1 if port < 65535 else 8081
        return (
            f"Port {port} on {host} is in use: stop what holds it or choose another with --port "
            f"(make serve PORT={other})."
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"Port {port} on {host} needs privileges this user lacks: choose a port above 1023 with --port "
            "(make serve PORT=8080)."
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine: choose another with --host (make serve HOST=127.0.0.1)."
    return f"Cannot listen on port {port} of {host}: {exc.strerror or exc}."


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening; ``ConfigError`` with one sentence otherwise."""
    host = _bare(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as gunicorn chooses; a name resolves to IPv4
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As gunicorn does: a port whose last connections are in TIME_WAIT (a restart) is free,
        # while one that something listens on is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(_why(exc, host, port)) from None
    return sock
