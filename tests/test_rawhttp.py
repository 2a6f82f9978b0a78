"""The load generators' HTTP client (tests/rawhttp.py) against a server that closes each
kept-alive connection after one answer, as uvicorn does to one idle past its timeout:
the next request goes out on a new connection instead of failing. (The 30-minute soak,
one submission every 2 s over a pool of 32, lost half of them to IncompleteReadError.)"""

from __future__ import annotations

import asyncio

from tests.rawhttp import Pool


async def test_a_connection_the_server_closed_is_replaced() -> None:
    served = 0

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))  # fmt: skip
        await reader.readexactly(length)
        served += 1
        body = b'{"n": %d}' % served
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()  # no "connection: close": the client learns it on its next use

    server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Pool(f"http://127.0.0.1:{port}", size=1)
    try:
        answers = [await pool.post_json("/x", {"i": i}) for i in range(5)]
    finally:
        pool.close()
        server.close()
    assert answers == [(200, b'{"n": %d}' % n) for n in range(1, 6)]
