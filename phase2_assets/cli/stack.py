"""``phase2 stack up`` / ``phase2 stack down``: the multi-process deployment on this machine
(PostgreSQL, Redis, an S3 endpoint, the code server, the daemon, the webserver, Celery workers),
from deploy/stack/ (``phase2_assets.stack.launcher``)."""

from __future__ import annotations

import argparse
import os

DEFAULT_DIR = ".stack"


def add_parser(sub) -> None:
    stack = sub.add_parser("stack", help="the multi-process deployment on this machine")
    verbs = stack.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("up", help="start every server; prints the UI's address")
    up.add_argument("--study", default=None, help="study (default: $PHASE2_STUDY, else demo)")
    up.add_argument(
        "--storage-url",
        default=None,
        help="an object store of your own (default: the stack's S3 endpoint, s3://phase2-stack)",
    )
    up.add_argument(
        "--run",
        action="store_true",
        help="switch on every tier sensor: the daemon runs the whole study to its report",
    )
    down = verbs.add_parser("down", help="stop every server of the stack")
    for p in (up, down):
        p.add_argument("--dir", default=DEFAULT_DIR, help=f"the stack's folder ({DEFAULT_DIR})")


def main(args: argparse.Namespace) -> int:
    from phase2_assets.stack import launcher

    if args.verb == "down":
        stopped = launcher.down(args.dir)
        print(f"stopped: {', '.join(stopped)}" if stopped else f"no stack running in {args.dir}")
        return 0
    study = args.study or os.environ.get("PHASE2_STUDY") or "demo"
    stack = launcher.up(args.dir, study, storage_url=args.storage_url)
    if args.run:
        launcher.start_study(stack)
    print(f"stack up in {stack.folder}: study {study}, files in {stack.storage_url}")
    print(f"  UI: {stack.webserver_url}  (environment: {stack.folder / 'stack.env'})")
    where = f" --dir {args.dir}" if args.dir != DEFAULT_DIR else ""
    print(f"  stop it with: phase2 stack down{where}")
    return 0
