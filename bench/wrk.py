"""wrk (from Debian's packages) as the non-streaming load generator, with a JSON summary."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import msgspec

_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
%(auth)s
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON{"requests":%%d,"duration_us":%%d,"status_errors":%%d,"connect_errors":%%d,"read_errors":%%d,' ..
    '"write_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%f}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean))
end
"""


class WrkResult(msgspec.Struct):
    requests: int
    duration_us: int
    status_errors: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    p50_us: int
    p90_us: int
    p99_us: int
    mean_us: float

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    @property
    def errors(self) -> int:
        return self.status_errors + self.connect_errors + self.read_errors + self.write_errors + self.timeouts


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: `make bench` installs it (apt-get install -y wrk)")
    return path


def run_wrk(
    url: str, body: dict[str, object], api_key: str | None, connections: int, seconds: float, cpus: str
) -> WrkResult:
    auth = f'wrk.headers["Authorization"] = "Bearer {api_key}"' if api_key else ""
    script = _SCRIPT % {"body": json.dumps(body), "auth": auth}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        command = [
            "taskset",
            "-c",
            cpus,
            require_wrk(),
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            handle.name,
            url,
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        Path(handle.name).unlink()
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON"))
    return msgspec.json.decode(line[len("WRKJSON") :], type=WrkResult)
