"""Is the port free? Asked before `serve` starts anything, so a taken port is one
`error:` line rather than a banner, a token and a dispatcher followed by Errno 98."""

from __future__ import annotations

import socket


class PortTaken(Exception):
    pass


def check_port_free(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortTaken(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise PortTaken(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(another server there? pick one with --port)"
            ) from None
