"""HTTP load from ``wrk`` (C, one thread per core it is given), scripted in Lua.

A Python load generator tops out near the server's own rate on this machine, so every HTTP
throughput figure is driven by wrk. The Lua script sends one fixed request, counts responses that
are not 200 or lack an expected marker, and prints a JSON summary (rate, latency percentiles).
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.procs import CpuMeter

__all__ = ["WrkResult", "require_wrk", "run_wrk"]

_LUA = r"""
local threads = {}
wrk.method = "%(method)s"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local marker = %(marker)s

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  sample = ""
end

function response(status, headers, body)
  if status ~= 200 or (marker ~= "" and not string.find(body, marker, 1, true)) then
    bad = bad + 1
    if sample == "" then sample = tostring(status) .. " " .. string.sub(body or "", 1, 300) end
  end
end

function done(summary, latency, requests)
  local bad_total, sample_any = 0, ""
  for _, t in ipairs(threads) do
    bad_total = bad_total + t:get("bad")
    local s = t:get("sample")
    if s ~= "" then sample_any = s end
  end
  local e = summary.errors
  io.write(string.format(
    '@@WRK {"requests": %%d, "duration_us": %%d, "bad": %%d, "errors": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%f, "sample": "%%s"}\n',
    summary.requests, summary.duration, bad_total,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    (string.gsub(sample_any, '[%%c"\\]', ' '))))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    bad: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    sample: str
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def ok(self) -> bool:
        return self.bad == 0 and self.errors == 0


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (bench/run does it for you)")
    return path


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def run_wrk(
    url: str,
    body: dict[str, object] | None,
    *,
    connections: int,
    seconds: float,
    server_pid: int,
    token: str,
    marker: str = "",
    threads: int = 1,
    method: str = "POST",
) -> WrkResult:
    """Drive ``url`` for ``seconds`` with ``connections`` keep-alive connections; measure CPU."""
    wrk = require_wrk()
    script = _LUA % {
        "method": method,
        "body": _lua_string(json.dumps(body)) if body is not None else "nil",
        "token": token,
        "marker": _lua_string(marker),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        script_path = Path(f.name)
    try:
        proc = subprocess.Popen(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "10s",
                "-s",
                str(script_path),
                url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        meter = CpuMeter(server=server_pid).start()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out, _ = proc.communicate(timeout=seconds + 60)
        cpu = meter.stop()
        # wrk is gone from /proc once it exits: its CPU comes from the reaped children's rusage.
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.monotonic() - meter.started
        used = reaped.ru_utime + reaped.ru_stime - children.ru_utime - children.ru_stime
        cpu["wrk"] = 100 * used / wall
    finally:
        script_path.unlink(missing_ok=True)
    line = next((ln for ln in out.splitlines() if ln.startswith("@@WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    data = json.loads(line[len("@@WRK ") :])
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        bad=data["bad"],
        errors=data["errors"],
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        sample=data["sample"],
        cpu=cpu,
    )
