#!/usr/bin/env python3
"""An HTTP/1.1 proxy on 127.0.0.1 that holds each request for a fixed delay before
answering it: round-trip latency like a distant cloud's, for the benchmark.

Usage: delay_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS [--replay]  (runs until killed)

With --replay, the answer to a GET is recorded the first time its request line
(method, path and query) is seen and replayed after that, signatures aside: the
local server's CPU time then drops out, as a cloud's does (it runs on the cloud's
machines, not ours), and only the latency is left to hide. The benchmark warms the
cache with one run first, and reports live and replayed figures apart.

With DELAY_PROXY_LOG=FILE in the environment, each request is logged there as it
is answered: the wall-clock times it arrived and was answered (seconds) and its
request line, to see how a run's requests overlap (which round each one is in).
"""
import asyncio
import os
import sys
import time

listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000
replay = "--replay" in sys.argv[4:]
recorded: dict[bytes, bytes] = {}
log = open(os.environ["DELAY_PROXY_LOG"], "a", buffering=1) if os.environ.get("DELAY_PROXY_LOG") else None


async def read_message(reader, is_response, method=b""):
    """One HTTP/1.1 message, whole: (head bytes, body bytes), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            headers[name.strip().lower()] = value.strip()
    body = b""
    status = head.split(b" ", 2)[1] if is_response else b""
    if is_response and (method == b"HEAD" or status in (b"204", b"304")):
        pass
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            body += size_line + chunk
            if size == 0:  # the last chunk (no trailers from these servers)
                break
    elif b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    return head, body


async def handle(client_reader, client_writer):
    server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
    try:
        while (request := await read_message(client_reader, False)) is not None:
            head, body = request
            request_line = head.split(b"\r\n", 1)[0]
            method = request_line.split(b" ", 1)[0]
            arrived = time.time()
            await asyncio.sleep(delay)
            answer = recorded.get(request_line) if replay and method == b"GET" else None
            if answer is None:
                server_writer.write(head + body)
                await server_writer.drain()
                response = await read_message(server_reader, True, method)
                if response is None:
                    break
                answer = response[0] + response[1]
                if replay and method == b"GET" and response[0].split(b" ", 2)[1] == b"200":
                    recorded[request_line] = answer
            client_writer.write(answer)
            await client_writer.drain()
            if log:
                log.write(f"{arrived:.4f} {time.time():.4f} {request_line.decode(errors='replace')}\n")
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        client_writer.close()
        server_writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


asyncio.run(main())
