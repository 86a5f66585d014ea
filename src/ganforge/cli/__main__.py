"""`ganforge <command> [args]`: train (same as `python train.py`)."""

from __future__ import annotations

import sys

COMMANDS = {"train": "ganforge.cli.train"}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help") or sys.argv[1] not in COMMANDS:
        names = ", ".join(COMMANDS)
        print(f"usage: ganforge <command> [args]  (commands: {names})", file=sys.stderr)
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    command = sys.argv.pop(1)
    sys.argv[0] = f"ganforge {command}"
    module = __import__(COMMANDS[command], fromlist=["main"])
    module.main()


if __name__ == "__main__":
    main()
