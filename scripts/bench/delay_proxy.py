#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that holds each request from the client for a fixed delay
before passing it on: round-trip latency like a distant cloud's, for the benchmark.
Usage: delay_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS (runs until killed)."""
import asyncio
import sys

listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000


async def pipe(reader, writer, hold):
    try:
        while data := await reader.read(65536):
            if hold:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer):
    server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
    await asyncio.gather(pipe(client_reader, server_writer, True), pipe(server_reader, client_writer, False))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


asyncio.run(main())
