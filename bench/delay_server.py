#!/usr/bin/env python3
"""A keep-alive HTTP/1.1 server on 127.0.0.1 that answers every request after a fixed delay.

For bench/load.sh's accuracy section: at sub-millisecond latencies two load tools differ by
their own client paths (tens of microseconds); behind a server whose latency is a known few
milliseconds, their percentiles should agree. Usage: delay_server.py PORT DELAY_MS
"""
import asyncio
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"


async def serve(reader, writer, delay):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > 65536:
                break
            await asyncio.sleep(delay)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    port, delay = int(sys.argv[1]), float(sys.argv[2]) / 1000
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, delay), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
