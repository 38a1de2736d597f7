"""Soak the browser app: N concurrent clients for T seconds replaying real callback payloads.

    python bench/soak.py [--clients 20] [--seconds 60] [--runs RUNS_DIR]

Starts ``trajviz serve`` on 127.0.0.1 (a free port) on RUNS_DIR (default: a temporary
folder holding one synthetic run from tests/app_fixtures.py), reads the real layout
and callback graph (``/_dash-layout``, ``/_dash-dependencies``), builds the payloads
the page sends (run picker, run controls, the inner-loop and meta-training draws,
with the layout's values and the run picker's first run) and POSTs them to
``/_dash-update-component`` from N threads for T seconds. Clientside callbacks,
exports and "New run" are not replayed (no side effects). Prints requests, errors
(any status but 200, or a failed connection; each of these payloads answers 200), p50/p95/max latency, and the
server's RSS before and after. Bounded: at most 64 clients and 600 seconds; not
part of the test suite.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def find_props(node, wanted: dict[str, dict]) -> None:
    """Every component's props in the layout tree, by id (string ids only)."""
    if isinstance(node, list):
        for n in node:
            find_props(n, wanted)
        return
    if not isinstance(node, dict):
        return
    props = node.get("props", {})
    if isinstance(props.get("id"), str):
        wanted[props["id"]] = props
    for value in props.values():
        if isinstance(value, (dict, list)):
            find_props(value, wanted)


def payloads(port: int) -> list[bytes]:
    """The page's server-side callback requests, with the layout's values."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    _, layout = request(conn, "GET", "/_dash-layout")
    _, deps = request(conn, "GET", "/_dash-dependencies")
    props: dict[str, dict] = {}
    find_props(json.loads(layout), props)
    deps = [d for d in json.loads(deps) if not d.get("clientside_function")]

    def spec(items, values):
        return [{"id": i["id"], "property": i["property"],
                 "value": values.get((i["id"], i["property"]),
                                     props.get(i["id"], {}).get(i["property"]))} for i in items]

    def body(dep, values, changed):
        outputs = [{"id": o.split(".")[0], "property": o.split(".")[1]}
                   for o in dep["output"].strip(".").split("...")]
        return json.dumps({"output": dep["output"], "outputs": outputs,
                           "inputs": spec(dep["inputs"], values),
                           "state": spec(dep.get("state", []), values),
                           "changedPropIds": changed}).encode()

    from trajviz.app import ids

    picker = next(d for d in deps if d["output"].startswith(f"..{ids.RUN}.options"))
    first = body(picker, {}, [f"{ids.URL}.pathname"])
    status, answer = request(conn, "POST", "/_dash-update-component", first)
    run_id = json.loads(answer)["response"][ids.RUN]["value"] if status == 200 else None
    if run_id is None:
        sys.exit("soak: the runs folder has no run to draw")
    values = {(ids.RUN, "value"): run_id, (ids.LEARNERS, "value"): ["leap", "reptile", "maml"],
              (ids.TASK, "value"): "mean", (ids.MODE, "value"): "2d"}
    out = [first]
    for dep in deps:
        names = {i["id"] for i in dep["inputs"]}
        if ids.RUN in names and dep is not picker:
            out.append(body(dep, values, [f"{ids.RUN}.value"]))
            if ids.TASK in names:
                out.append(body(dep, {**values, (ids.TASK, "value"): "1"}, [f"{ids.TASK}.value"]))
    conn.close()
    return out


def client(port: int, bodies: list[bytes], stop: float, out: dict, k: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = k
    while time.time() < stop:
        t = time.perf_counter()
        try:
            status, _ = request(conn, "POST", "/_dash-update-component", bodies[i % len(bodies)])
            ok = status == 200
        except (OSError, http.client.HTTPException):
            ok, status = False, "connection"
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        with out["lock"]:
            out["latency"].append(time.perf_counter() - t)
            out["errors"] += not ok
            out["status"][status] = out["status"].get(status, 0) + 1
        i += 1
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=Path)
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 1 <= args.seconds <= 600:
        parser.error("--clients must be 1..64 and --seconds 1..600")
    tmp = tempfile.TemporaryDirectory(prefix="trajviz-soak-")
    runs = args.runs
    if runs is None:
        sys.path.insert(0, str(ROOT / "tests"))
        sys.path.insert(0, str(ROOT))
        from app_fixtures import make_run, write_run_dir
        runs = Path(tmp.name) / "runs"
        write_run_dir(runs, make_run(run_id="soak", n_params=3))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "trajviz.cli.main", "serve", str(runs),
                               "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        server.stdout.readline()  # the banner
        deadline = time.time() + 120
        while True:
            try:
                request(http.client.HTTPConnection("127.0.0.1", port, timeout=5), "GET", "/")
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    sys.exit("soak: the server did not start")
                time.sleep(0.2)
        bodies = payloads(port)
        for b in bodies:  # warm the run cache once
            request(http.client.HTTPConnection("127.0.0.1", port, timeout=60), "POST",
                    "/_dash-update-component", b)
        before = rss_mb(server.pid)
        out = {"latency": [], "errors": 0, "status": {}, "lock": threading.Lock()}
        stop = time.time() + args.seconds
        threads = [threading.Thread(target=client, args=(port, bodies, stop, out, k))
                   for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        tmp.cleanup()
    lat = sorted(out["latency"])
    p = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    print(f"soak: {args.clients} clients × {args.seconds:.0f} s, {len(bodies)} distinct payloads")
    print(f"requests {len(lat)}  errors {out['errors']}  ({len(lat) / args.seconds:.1f}/s)  "
          f"statuses {out['status']}")
    print(f"latency ms: p50 {p(0.5):.0f}  p95 {p(0.95):.0f}  max {1000 * lat[-1]:.0f}  "
          f"mean {1000 * statistics.fmean(lat):.0f}")
    print(f"server RSS MB: before {before:.0f}  after {after:.0f}")
    return 0 if out["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
