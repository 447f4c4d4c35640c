"""A bare TCP forwarder: the floor of any relay between a client and the runtime.

Bytes go through as they arrive, both ways, with no WebSocket parsing and no recording, on the
event loop the proxy runs on (``recorder.cli.eventloop``). The relay benchmark times the same
bursts direct, through this and through the proxy, in turns: what one more hop costs by
itself, against what the proxy's own work costs (each frame parsed whole and sent again, and
recorded).

    python -m bench.forwarder ws://127.0.0.1:PORT

It prints ``listening on ws://127.0.0.1:PORT`` on stderr (as ``recorder`` servers do, so
``bench.procs`` finds it) and runs until it is terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from urllib.parse import urlsplit

from recorder.cli import eventloop

#: Bytes read from a socket at a time (uvloop reads up to 256 KiB itself).
READ_SIZE = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close: the other direction may still be sending."""
    try:
        while data := await reader.read(READ_SIZE):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except ConnectionError:
        writer.transport.abort()


async def _serve(host: str, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.transport.abort()
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            writer.close()
            up_writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    listening = server.sockets[0].getsockname()[1]
    print(f"listening on ws://127.0.0.1:{listening}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.forwarder")
    parser.add_argument("upstream", help="the runtime's ws://host:port")
    args = parser.parse_args(argv)
    url = urlsplit(args.upstream)
    try:
        port = url.port
    except ValueError:
        port = None
    if url.scheme != "ws" or not url.hostname or port is None:
        parser.error(f"upstream must be ws://host:port, not {args.upstream!r}")
    eventloop.run(_serve(url.hostname, port))


if __name__ == "__main__":
    main()
