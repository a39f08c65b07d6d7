#!/usr/bin/env python3
"""What slow, careless and hostile clients cost a facade binary: one scenario
per run, printed as one line (bench/README.md, "Client limits").

usage: bench/client_limits.py BINARY SCENARIO [TOML lines for the config...]
scenarios: slow_bodies trickle early_413 slow_readers fd_limit shutdown second_serve
BODY_MIB=N sets early_413's body size (default 2).

BINARY must be a default build (it also runs the mock Glance). Everything
listens on 127.0.0.1; the standard library and `prlimit` only.
"""
import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
SCENARIO = sys.argv[2]
EXTRA = "\n".join(sys.argv[3:])
ENV = "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1"
WORK = tempfile.mkdtemp(prefix="hs-fig-")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} not up")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


class Stack:
    def __init__(self, prefix=(), extra=EXTRA):
        self.mock_port = free_port()
        self.port = free_port()
        self.mock = subprocess.Popen(
            [BIN, "mock-glance", "--listen", f"127.0.0.1:{self.mock_port}", "--prefix", "/image"],
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.mock_port)
        self.config = os.path.join(WORK, "facade.toml")
        with open(self.config, "w") as f:
            f.write(
                f'listen = "127.0.0.1:{self.port}"\n{extra}\n'
                f'[namespaces.ccsr1]\nglance_url = "http://127.0.0.1:{self.mock_port}/image"\n'
                f'auth = {{ type = "trusted", user_id = "u" }}\n'
            )
        self.log_path = os.path.join(WORK, "facade.log")
        self.log = open(self.log_path, "w")
        self.facade = subprocess.Popen(
            list(prefix) + [BIN, "serve", "--config", self.config], stderr=self.log
        )
        wait_port(self.port)

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        for process in (self.facade, self.mock):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (self.facade, self.mock):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def head(method, path, length=None, extra=""):
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: x",
        "X-Target-Ns: ccsr1",
        f"X-Environment-Id: {ENV}",
        "Content-Type: application/json",
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


async def slow_bodies(stack, clients=500):
    before = rss_kib(stack.facade.pid)
    body = b"x" * (1024 * 1024 - 1)
    writers = []
    opened = time.time()

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
        writer.write(head("POST", "/images", 1024 * 1024))
        writer.write(body)
        await writer.drain()
        writers.append((reader, writer))

    await asyncio.gather(*(one() for _ in range(clients)))
    await asyncio.sleep(3)
    during = rss_kib(stack.facade.pid)
    # How long the facade keeps them: wait for each connection to be closed
    # by the server (an answer then EOF), up to 90 s.
    answers = {}

    async def until_closed(reader):
        data = b""
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        return data

    tasks = [asyncio.create_task(until_closed(reader)) for reader, _ in writers]
    done, pending = await asyncio.wait(tasks, timeout=90)
    held = time.time() - opened
    for task in done:
        status = task.result()[9:12].decode() or "closed without answer"
        answers[status] = answers.get(status, 0) + 1
    peak_during = rss_kib(stack.facade.pid)
    for _, writer in writers:
        writer.close()
    await asyncio.sleep(15)
    after = rss_kib(stack.facade.pid)
    print(
        f"slow bodies x{clients}: RSS before {mib(before)}, during {mib(during)}, "
        f"closed by the facade: {len(done)} of {clients} within {held:.0f} s {answers}, "
        f"RSS when closed/at 90 s {mib(peak_during)}, 15 s after the clients left {mib(after)}"
    )


async def trickle(stack, limit=120):
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
    started = time.time()
    writer.write(head("POST", "/images", 64))
    await writer.drain()

    async def feed():
        try:
            while True:
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(10)
        except OSError:
            return

    feeder = asyncio.create_task(feed())
    try:
        answer = await asyncio.wait_for(reader.read(65536), limit)
        print(f"trickle (a byte every 10 s): answered after {time.time() - started:.1f} s: {answer[:12]!r}")
    except asyncio.TimeoutError:
        print(f"trickle (a byte every 10 s): still held after {limit} s")
    feeder.cancel()
    writer.close()


def early_413(stack, tries=20):
    seen = 0
    errors = {}
    body = b"x" * (int(os.environ.get("BODY_MIB", "2")) * 1024 * 1024)
    for _ in range(tries):
        connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
        try:
            connection.request(
                "POST",
                "/images",
                body=body,
                headers={
                    "X-Target-Ns": "ccsr1",
                    "X-Environment-Id": ENV,
                    "Content-Type": "application/json",
                },
            )
            response = connection.getresponse()
            response.read()
            if response.status == 413:
                seen += 1
            else:
                errors[response.status] = errors.get(response.status, 0) + 1
        except OSError as error:
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
        finally:
            connection.close()
    print(f"{len(body) // 1048576} MiB body with http.client: 413 seen {seen} of {tries}; otherwise {errors}")


def seed(stack, count):
    connection = http.client.HTTPConnection("127.0.0.1", stack.mock_port)
    for index in range(count):
        connection.request(
            "POST",
            "/image/v2/images",
            body=json.dumps({"name": f"img-{index:06}", "disk_format": "raw", "container_format": "bare",
                             "visibility": "private"}),
            headers={"X-Identity-Status": "Confirmed", "X-Project-Id": ENV, "X-Roles": "member,reader",
                     "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        assert response.status == 201, response.status
    connection.close()


async def slow_readers(stack, clients=50, images=10000, limit=150):
    seed(stack, images)
    before = rss_kib(stack.facade.pid)
    sockets = []
    started = time.time()
    for _ in range(clients):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", stack.port))
        s.sendall(head("GET", "/images"))
        sockets.append(s)
    await asyncio.sleep(10)
    during = rss_kib(stack.facade.pid)
    # Cut off: the facade's log line for the list (written when the body ends).
    cut = None
    while time.time() - started < limit:
        lines = [l for l in stack.log_text().splitlines() if "operation=list" in l]
        if len(lines) >= clients:
            cut = time.time() - started
            break
        await asyncio.sleep(0.5)
    lines = [l for l in stack.log_text().splitlines() if "operation=list" in l]
    aborted = sum("aborted=true" in l for l in lines)
    after = rss_kib(stack.facade.pid)
    for s in sockets:
        s.close()
    await asyncio.sleep(15)
    later = rss_kib(stack.facade.pid)
    print(f"    RSS 15 s after the clients were cut off or closed: {mib(later)}")
    if cut is None:
        print(f"slow readers x{clients} ({images} images): RSS before {mib(before)}, during {mib(during)}, "
              f"still held after {limit} s ({len(lines)} log lines), RSS then {mib(after)}")
    else:
        print(f"slow readers x{clients} ({images} images): RSS before {mib(before)}, during {mib(during)}, "
              f"all cut off after {cut:.1f} s, {aborted} of {len(lines)} logged aborted=true, RSS then {mib(after)}")


async def fd_limit(stack, idle=400):
    with open(f"/proc/{stack.facade.pid}/limits") as f:
        limit = [l for l in f if l.startswith("Max open files")][0].split()[3:5]
    held = []
    for _ in range(idle):
        try:
            held.append(socket.create_connection(("127.0.0.1", stack.port), timeout=2))
        except OSError:
            break
    await asyncio.sleep(1)
    started = time.time()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=5)
        connection.request("GET", "/images", headers={"X-Target-Ns": "ccsr1", "X-Environment-Id": ENV})
        outcome = f"answered {connection.getresponse().status}"
    except OSError as error:
        outcome = f"no answer ({type(error).__name__} after {time.time() - started:.1f} s)"
    # A request on one of the held connections.
    held[0].sendall(head("GET", "/images"))
    held[0].settimeout(5)
    try:
        first = held[0].recv(12)
        on_held = f"answered {first[9:12].decode()}"
    except OSError as error:
        on_held = f"no answer ({type(error).__name__})"
    failed = stack.log_text().count("accept failed")
    print(f"{idle} idle connections, fd limit soft/hard {limit[0]}/{limit[1]} at start: "
          f"{len(held)} opened; a new connection: {outcome}; an open one: {on_held}; "
          f"'accept failed' lines: {failed}")
    for s in held:
        s.close()


def shutdown(stack):
    s = socket.create_connection(("127.0.0.1", stack.port))
    s.sendall(b"GET /images HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.3)
    started = time.time()
    stack.facade.send_signal(signal.SIGTERM)
    stack.facade.wait(60)
    print(f"shutdown with a half-sent head: exited after {time.time() - started:.2f} s (status {stack.facade.returncode})")
    s.close()


def second_serve(stack):
    log = open(os.path.join(WORK, "second.log"), "w")
    second = subprocess.Popen([BIN, "serve", "--config", stack.config], stderr=log)
    time.sleep(1.5)
    if second.poll() is not None:
        with open(os.path.join(WORK, "second.log")) as f:
            print(f"second serve: exited {second.returncode}: {f.read().strip()}")
        return
    answered = 0
    for _ in range(200):
        connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=5)
        connection.request("GET", "/images", headers={"X-Target-Ns": "ccsr1", "X-Environment-Id": ENV})
        connection.getresponse().read()
        connection.close()
        answered += 1
    with open(os.path.join(WORK, "second.log")) as f:
        served_by_second = f.read().count("alliance_glance::request")
    print(f"second serve: still running; of {answered} requests it served {served_by_second}")
    second.send_signal(signal.SIGTERM)
    second.wait(20)


def main():
    prefix = ("prlimit", "--nofile=256:20000") if SCENARIO == "fd_limit" else ()
    stack = Stack(prefix)
    try:
        if SCENARIO == "slow_bodies":
            asyncio.run(slow_bodies(stack))
        elif SCENARIO == "trickle":
            asyncio.run(trickle(stack))
        elif SCENARIO == "early_413":
            early_413(stack)
        elif SCENARIO == "slow_readers":
            asyncio.run(slow_readers(stack))
        elif SCENARIO == "fd_limit":
            asyncio.run(fd_limit(stack))
        elif SCENARIO == "shutdown":
            shutdown(stack)
        elif SCENARIO == "second_serve":
            second_serve(stack)
    finally:
        stack.stop()


main()
