"""``gateway worker``: a process that only runs jobs (saq on Redis; no HTTP server), for
machines that should only work. It makes the same shared clients as ``gateway serve`` (the
app's lifespan) and runs until SIGTERM or SIGINT, when its running jobs go back to the queue."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from gateway import config as config_module
from gateway.config import ConfigError


def add_parser(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run jobs only (needs REDIS_URL), no HTTP server")
    worker.add_argument("--config", metavar="PATH", help="the models.yaml to use (default: "
                        "$GATEWAY_CONFIG, else ./models.yaml)")
    worker.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"])
    worker.add_argument("--log-format", default="text", choices=["text", "json"],
                        help="text lines, or one JSON object per line (default: %(default)s)")
    worker.set_defaults(func=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    from gateway import logs
    from gateway.app import Settings, create_app

    logs.setup(args.log_level, args.log_format)
    settings = Settings.from_env()
    if settings.redis_url is None:
        print("gateway: a worker needs REDIS_URL (the queue it takes jobs from)",
              file=sys.stderr)
        return 1
    try:
        config = config_module.load_or_embedded(
            config_module.find(args.config or os.environ.get("GATEWAY_CONFIG")))
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    work = config.model_copy(update={"jobs": config.jobs.model_copy(update={"work": True})})
    asyncio.run(_run(create_app(work, settings)))
    return 0


async def _run(app: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with app.router.lifespan_context(app):
        logging.getLogger("gateway").info("worker ready: taking jobs")
        await stop.wait()
