#!/usr/bin/env python3
"""The origin the peers (nginx proxy_cache, Varnish) sit in front of: what userapi's database is
to userapi. GET /users/{id} answers after a fixed latency (default 200 ms, userapi's default
--db-latency-ms) with the JSON userapi would send for a seeded user; any number of requests wait
at once (asyncio), so unlike userapi's one-operation queue the misses are answered in parallel.
It counts the /users requests it received: GET /count returns {"requests": N}, and the total is
printed to stderr at exit.

usage: bench/origin.py [--port 0] [--latency-ms 200]
Prints "listening on http://127.0.0.1:PORT" once ready. Listens on 127.0.0.1 only; stops on
SIGTERM or SIGINT.
"""
import argparse
import asyncio
import json
import re
import signal
import sys

USER_PATH = re.compile(rb"^/users/([0-9]{1,18})$")


class Origin:
    def __init__(self, latency):
        self.latency = latency
        self.requests = 0

    async def serve(self, reader, writer):
        """One connection, keep-alive: the proxies reuse their upstream connections."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].split(b" ")
                if len(line) != 3 or line[0] not in (b"GET", b"HEAD"):
                    await self.reply(writer, 405, b'{"error":"method"}', close=True)
                    return
                path = line[1]
                close = b"\r\nconnection: close" in head.lower()
                if path == b"/count":
                    await self.reply(writer, 200, json.dumps({"requests": self.requests}).encode(), close)
                elif m := USER_PATH.match(path):
                    self.requests += 1
                    await asyncio.sleep(self.latency)
                    uid = int(m.group(1))
                    body = b'{"id":%d,"name":"User %d","email":"user%d@example.com"}' % (uid, uid, uid)
                    await self.reply(writer, 200, body, close, head_only=line[0] == b"HEAD")
                else:
                    await self.reply(writer, 404, b'{"error":"not found"}', close)
                if close:
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def reply(writer, status, body, close, head_only=False):
        reason = {200: b"OK", 404: b"Not Found", 405: b"Method Not Allowed"}[status]
        # No Cache-Control: how long an answer is kept is the proxy's setting, as userapi's TTL is
        # its own, so every server in the comparison keeps it for the same time.
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
            status, reason, len(body), b"Connection: close\r\n" if close else b"", b"" if head_only else body))
        await writer.drain()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=200)
    a = ap.parse_args()
    origin = Origin(a.latency_ms / 1000)
    server = await asyncio.start_server(origin.serve, "127.0.0.1", a.port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print("listening on http://127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await stop.wait()
    print("origin: %d requests" % origin.requests, file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
