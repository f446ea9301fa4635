"""COUNT FTP clients connecting at once; each waits for its first reply line.

usage: flood.py HOST PORT COUNT DEADLINE_SECONDS
Opens every connection concurrently and keeps each one open until every client has its
first line (or the deadline passed), so that the clients that got in are still there while
the others arrive. Prints one JSON object: how many got a 220 banner, a 421, another line,
nothing before the deadline, or a connection error, and the slowest answer in seconds.
"""
import asyncio
import json
import resource
import sys
import time

host, port, count, deadline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

# One socket per client: lift the soft descriptor limit to the hard one.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def client(start, results, everyone_answered, answered):
    writer = None
    try:
        reader, writer = await asyncio.open_connection(host, port)
        line = await reader.readline()
        results.append((line[:3].decode("ascii", "replace"), time.monotonic() - start))
    except (OSError, asyncio.IncompleteReadError) as error:
        results.append(("error:" + type(error).__name__, time.monotonic() - start))
    finally:
        answered[0] += 1
        if answered[0] == count:
            everyone_answered.set()
    try:
        await everyone_answered.wait()
    finally:
        if writer is not None:
            writer.close()


async def main():
    start = time.monotonic()
    results, answered = [], [0]
    everyone_answered = asyncio.Event()
    tasks = [
        asyncio.create_task(client(start, results, everyone_answered, answered))
        for _ in range(count)
    ]
    done, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    summary = {"banner": 0, "refused": 0, "other": 0, "errors": 0, "unanswered": 0}
    for code, _ in results:
        if code == "220":
            summary["banner"] += 1
        elif code == "421":
            summary["refused"] += 1
        elif code.startswith("error:") or code == "":
            summary["errors"] += 1
        else:
            summary["other"] += 1
    summary["unanswered"] = count - len(results)
    summary["slowest_seconds"] = round(max((t for _, t in results), default=0.0), 3)
    print(json.dumps(summary))


asyncio.run(main())
