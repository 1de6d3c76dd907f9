"""The ``gateway`` command: ``serve``, ``check`` and ``keys``."""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__
from gateway.cli import keys as keys_cli
from gateway.cli import worker as worker_cli
from gateway.config import ConfigError, GatewayConfig, find, load_or_embedded


def config_path(arg: str | None) -> Path | None:
    """``--config``, else ``$GATEWAY_CONFIG``, else ``./models.yaml``; None when none of them
    exists (the embedded model)."""
    return find(arg or os.environ.get("GATEWAY_CONFIG"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def model_table(config: GatewayConfig) -> str:
    rows = [("NAME", "PROVIDER", "UPSTREAM MODEL", "API BASE")]
    for d in config.deployments:
        rows.append((d.name, d.provider, d.model or ("*" if d.is_wildcard else d.name),
                     str(getattr(d, "api_base", "") or "-")))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)),
                                row[3]]).rstrip() for row in rows)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _load_or_exit(path: Path | None) -> GatewayConfig:
    try:
        return load_or_embedded(path)
    except ConfigError as exc:
        print(f"gateway: config error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def cmd_check(args: argparse.Namespace) -> int:
    config = _load_or_exit(config_path(args.config))
    print(model_table(config))
    for warning in config.warnings():
        print(f"gateway: warning: {warning}", file=sys.stderr)
    print(f"ok: {plural(len(config.deployments), 'deployment')}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    path = path.resolve() if path else None
    _load_or_exit(path)
    if not os.environ.get("GATEWAY_MASTER_KEY") and not is_loopback(args.host) \
            and not args.insecure:
        print(f"gateway: refusing to serve on {args.host} with auth off: set "
              "GATEWAY_MASTER_KEY, or pass --insecure", file=sys.stderr)
        return 1
    if path:
        os.environ["GATEWAY_CONFIG"] = str(path)
    metrics_dir = None
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="gateway-metrics-")

    import uvicorn

    from gateway.http.protocol import PROTOCOL
    from gateway.logs import skip_paths, uvicorn_config

    os.environ["GATEWAY_LOG_LEVEL"] = args.log_level
    os.environ["GATEWAY_LOG_FORMAT"] = args.log_format
    if args.log_skip_paths is not None:
        os.environ["GATEWAY_LOG_SKIP_PATHS"] = args.log_skip_paths
    try:
        uvicorn.run("gateway.app:app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level=args.log_level, access_log=args.access_log,
                    server_header=False, http=PROTOCOL,
                    # (only the access log reads the client address: without it, no
                    # X-Forwarded-For layer per request)
                    proxy_headers=args.access_log,
                    log_config=uvicorn_config(args.log_format, skip_paths(
                        os.environ.get("GATEWAY_LOG_SKIP_PATHS"))))
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def cmd_convert_onnx(args: argparse.Namespace) -> int:
    from providers.local.convert import main as convert

    return convert(args.gguf, args.out, args.precision, args.keep_hf)


CONFIG_HELP = ("the models.yaml to use (default: $GATEWAY_CONFIG, else ./models.yaml; with "
               "neither, the embedded SmolLM2 model)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="An OpenAI-compatible gateway.")
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on (default: %(default)s); a non-loopback "
                            "address needs GATEWAY_MASTER_KEY or --insecure")
    serve.add_argument("--port", type=int, default=8000,
                       help="the port to listen on (default: %(default)s)")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes (default: %(default)s); with several, keep "
                            "shared state in Redis (REDIS_URL)")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback host with auth off")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"],
                       help="how much the server logs (default: %(default)s)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument("--log-format", default="text", choices=["text", "json"],
                       help="text lines, or one JSON object per line with one line per "
                            "answered request (default: %(default)s)")
    serve.add_argument("--log-skip-paths", metavar="PATHS",
                       help="comma-separated paths whose successful answers are not logged "
                            "(the JSON request line and --access-log; default: "
                            "$GATEWAY_LOG_SKIP_PATHS, else /health,/health/ready,/metrics; "
                            "'' logs them all)")
    serve.set_defaults(func=cmd_serve)
    check = sub.add_parser("check", help="validate the config and print the model table")
    check.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    check.set_defaults(func=cmd_check)
    convert = sub.add_parser("convert-onnx", help="turn a GGUF model into an onnxruntime-genai "
                             "model folder (provider onnx)")
    convert.add_argument("gguf", help="the .gguf file (llama architecture, byte-level BPE)")
    convert.add_argument("out", help="the model folder to write")
    convert.add_argument("--precision", default="int4", choices=["int4", "int8", "fp16", "fp32"])
    convert.add_argument("--keep-hf", metavar="DIR",
                         help="also keep the intermediate Hugging Face checkpoint in DIR")
    convert.set_defaults(func=cmd_convert_onnx)
    keys_cli.add_parser(sub)
    worker_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
