"""Optional comparison: LiteLLM's proxy, from its own virtualenv, against the same mock upstream.

`python -m bench.run --compare-litellm` installs `litellm[proxy]` into bench/.litellm-venv once
(from PyPI, like any other dependency) and runs it pinned to the same CPUs Keyrail had, after
Keyrail has stopped, so the two never share a core.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.procs import descendants
from bench.stack import wait_until_healthy

VENV = Path(__file__).parent / ".litellm-venv"
MODEL = "gpt-4o-mini"
API_KEY = "sk-litellm-bench"


def ensure_litellm() -> Path:
    binary = VENV / "bin" / "litellm"
    if not binary.exists():
        print("[bench] installing litellm[proxy] into bench/.litellm-venv (first run only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "--progress-bar", "on", "litellm[proxy]"], check=True
        )
    return binary


class LiteLLMProxy:
    def __init__(self, workdir: Path, cpus: str, upstream_url: str, port: int) -> None:
        config = workdir / "litellm.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {MODEL}\n"
            "    litellm_params:\n"
            f"      model: openai/{MODEL}\n"
            f"      api_base: {upstream_url}\n"
            "      api_key: sk-not-checked\n"
            "general_settings:\n"
            f"  master_key: {API_KEY}\n"
            "litellm_settings:\n"
            "  set_verbose: false\n"
        )
        self.url = f"http://127.0.0.1:{port}"
        self.log = (workdir / "litellm.log").open("wb")
        self.process = subprocess.Popen(
            ["taskset", "-c", cpus, str(ensure_litellm()), "--config", str(config), "--port", str(port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout_s: float = 180) -> None:
        wait_until_healthy(f"{self.url}/health/liveliness", self.process, self.log.name, timeout_s)

    def processes(self) -> dict[int, str]:
        found = {pid: "litellm" for pid in descendants(self.process.pid)}
        found[self.process.pid] = "litellm"
        return found

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
