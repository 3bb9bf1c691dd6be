"""Process-wide logging setup for a service: plain lines on stderr, no request bodies ever."""

from __future__ import annotations

import logging
import sys


def configure_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    # Libraries that would log per request or per reconnect attempt stay at WARNING.
    for noisy in ("uvicorn.access", "httpx", "hvac", "aiohttp.access", "nats"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
