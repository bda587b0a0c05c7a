#!/usr/bin/env python3
"""The attacks of docs/security.md against a `stocklake run` binary, measured.

    python3 bench/hostile.py BINARY [BINARY ...]   # e.g. an older build beside this one

For each binary, on a fresh data directory (SQLite gold; PostgreSQL too when
STOCKLAKE_TEST_POSTGRES names a reachable server), each attack is sent and the table says what
the process answered, its peak resident set afterwards (VmHWM), how long /healthz took, and
whether an honest event sent after it reached gold. The pass/fail version of the same attacks
runs in CI as crates/stocklake/tests/it/hostile.rs; this script is for numbers.
"""

import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

INGEST = "till-token-0123456789"
READ = "read-token-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def peak_rss_mib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return -1


def request(method, url, body=None, headers=None, timeout=60):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception as e:  # noqa: BLE001 - a refused or reset connection is an answer here
        return type(e).__name__, b""


def healthz_ms(base):
    t = time.monotonic()
    status, _ = request("GET", base + "/healthz", timeout=5)
    ms = (time.monotonic() - t) * 1000
    return f"{ms:.0f} ms" if status == 200 else f"{status} after {ms:.0f} ms"


def event(eid, kind, at, store, sku, qty, price=None):
    line = {"sku": sku, "quantity": qty}
    if price is not None:
        line["unit_price"] = price
    return json.dumps({"schema_version": 1, "event_id": eid, "event_type": kind,
                       "event_time": at, "store_id": store, "lines": [line]}).encode()


def post(base, records, ctype="application/x-ndjson", extra=None, raw=None):
    headers = {"Authorization": "Bearer " + INGEST}
    if ctype:
        headers["Content-Type"] = ctype
    headers.update(extra or {})
    body = raw if raw is not None else b"\n".join(records) + b"\n"
    if not ctype:
        # urllib would add a form content type; a request with none at all needs http.client
        import http.client
        host, port = base[len("http://"):].split(":")
        c = http.client.HTTPConnection(host, int(port), timeout=60)
        c.putrequest("POST", "/v1/events", skip_accept_encoding=True)
        for k, v in headers.items():
            c.putheader(k, v)
        c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        status = c.getresponse().status
        c.close()
        return status
    status, _ = request("POST", base + "/v1/events", body, headers)
    return status


def honest_reaches_gold(base, wait=25):
    """Sends one honest receipt to a store of its own and waits for it in gold."""
    store = "H-" + uuid.uuid4().hex[:8]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if post(base, [event("honest-" + store, "receipt", now, store, "H", 5)]) != 202:
        return "not accepted"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        status, body = request("GET", f"{base}/v1/stock?store_id={store}",
                               headers={"Authorization": "Bearer " + READ})
        if status == 200 and json.loads(body).get("count"):
            return "yes"
        time.sleep(0.5)
    return f"no (after {wait} s)"


def slowloris(base, n):
    host, port = base[len("http://"):].split(":")
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection((host, int(port)), timeout=2)
            s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(s)
        except OSError:
            break
    return socks


def still_open(socks):
    n = 0
    for s in socks:
        s.settimeout(0.05)
        try:
            if s.recv(1) == b"":
                continue
        except socket.timeout:
            n += 1
            continue
        except OSError:
            continue
    return n


def trickle(base, n, declared, send):
    host, port = base[len("http://"):].split(":")
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection((host, int(port)), timeout=2)
            s.sendall((f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {INGEST}\r\n"
                       f"Content-Type: application/x-ndjson\r\nContent-Length: {declared}\r\n\r\n").encode())
            socks.append(s)
        except OSError:
            break
    chunk = b"x" * (256 << 10)
    for _ in range(send // len(chunk)):
        for s in socks:
            try:
                s.settimeout(1)
                s.sendall(chunk)
            except OSError:
                pass
    return socks


def run_binary(binary, gold):
    data = tempfile.mkdtemp(prefix="hostile-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKLAKE_")}
    env.update({
        "STOCKLAKE_INGEST_TOKENS": INGEST, "STOCKLAKE_SERVE_API_TOKEN": READ,
        "STOCKLAKE_LOG": "warn", "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "unused", "AWS_SECRET_ACCESS_KEY": "unused",
        "STOCKLAKE_REFINE_MAX_PAST_DAYS": "3700",
    })
    args = [binary, "run", "--data-dir", data, "--listen", f"127.0.0.1:{port}"]
    if gold:
        args += ["--gold", gold]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(200):
        if request("GET", base + "/healthz", timeout=1)[0] == 200:
            break
        time.sleep(0.1)
    rows = []

    def row(name, answer, settle=3):
        time.sleep(settle)
        rows.append((name, str(answer), peak_rss_mib(proc.pid), healthz_ms(base), honest_reaches_gold(base)))

    row("honest events, before any attack", post(base, [event("warm", "receipt", "2026-11-02T10:00:00Z", "W", "W", 1)]))
    row("1. a sale of 1,000,000 × 100,000,000", post(base, [event("poison", "sale", "2026-11-02T10:00:00Z", "A1", "X", 1000000, 100000000)]))
    start = time.time() - 3651 * 86400
    dates = [event(f"d-{d}", "receipt", time.strftime("%Y-%m-%dT12:00:00Z", time.gmtime(start + d * 86400)), "A2", "D", 1)
             for d in range(3651)]
    row("2. 3,651 event dates in one request (700 KB)", post(base, dates), settle=10)
    packed = gzip.compress(b"x\n" * 1_000_000, 9)
    row(f"3. 1,000,000 one-byte lines in {len(packed)} B of gzip",
        post(base, None, extra={"Content-Encoding": "gzip"}, raw=packed), settle=5)
    row("4a. text/plain from any web page", post(base, [b'{"event_id":"csrf"}'], ctype="text/plain"))
    row("4b. no Content-Type", post(base, [b'{"event_id":"csrf2"}'], ctype=None))
    socks = slowloris(base, 200)
    t0 = time.monotonic()
    h = healthz_ms(base)
    time.sleep(12)
    rows.append((f"5a. 200 half-sent request heads (/healthz meanwhile: {h})",
                 f"{still_open(socks)} still open after {time.monotonic() - t0:.0f} s",
                 peak_rss_mib(proc.pid), healthz_ms(base), honest_reaches_gold(base)))
    for s in socks:
        s.close()
    socks = trickle(base, 40, 16 << 20, 15 << 20)
    row("5b. 40 bodies of a declared 16 MiB, 15 MB trickled each", f"{len(socks)} connections", settle=2)
    for s in socks:
        s.close()
    legacy = json.dumps({"transaction_id": "long", "product_id": "LONG", "product_name": "n" * 500_000,
                         "category": "Dairy", "quantity": 1, "unit_price": 1.0, "total_price": 1.0,
                         "timestamp": "2026-11-02T10:00:00+00:00", "store_id": "A3"}).encode()
    row("6. a 500 KB product name", post(base, [legacy]))
    status, body = request("GET", base + "/v1/stock?store_id=A3", headers={"Authorization": "Bearer " + READ})
    rows.append(("6b. then GET /v1/stock?store_id=A3", f"{status}, {len(body):,} bytes", peak_rss_mib(proc.pid), healthz_ms(base), ""))
    status, body = request("GET", base + "/v1/stock?offset=9223372036854775808", headers={"Authorization": "Bearer " + READ})
    rows.append(("8. GET /v1/stock?offset=9223372036854775808 (2^63)",
                 f"{status}, {json.loads(body).get('count', '-') if status == 200 else '-'} rows",
                 peak_rss_mib(proc.pid), healthz_ms(base), ""))
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    return rows


def main():
    binaries = sys.argv[1:] or ["target/release/stocklake"]
    golds = [None]
    pg = os.environ.get("STOCKLAKE_TEST_POSTGRES")
    if pg:
        golds.append(pg)
    for gold in golds:
        for b in binaries:
            db = "PostgreSQL" if gold else "SQLite"
            if gold:
                # a database of its own per run
                name = "hostile_" + uuid.uuid4().hex[:8]
                subprocess.run(["psql", pg, "-qc", f"CREATE DATABASE {name}"], check=True)
                gold_url = pg.rsplit("/", 1)[0] + "/" + name
            else:
                gold_url = None
            print(f"\n### {b} on {db}\n")
            print("| attack | answer | peak RSS (MiB) | /healthz after | an honest event after it reaches gold |")
            print("| --- | --- | ---: | --- | --- |")
            for r in run_binary(b, gold_url):
                print("| " + " | ".join(str(x) for x in r) + " |")
            sys.stdout.flush()
            if gold:
                subprocess.run(["psql", pg, "-qc", f"DROP DATABASE {name} WITH (FORCE)"], check=False)


if __name__ == "__main__":
    main()
