"""`ganforge <command> [args]`: train, eval and predict (same as `python train.py`,
`python eval.py`, `python predict.py`), export, compress, decompress, rd, report."""

from __future__ import annotations

import sys

COMMANDS = {
    "train": ("ganforge.cli.train", "main"),
    "eval": ("ganforge.cli.evaluate", "main"),
    "predict": ("ganforge.cli.predict", "main"),
    "export": ("ganforge.cli.export", "main"),
    "compress": ("ganforge.cli.compress", "main_compress"),
    "decompress": ("ganforge.cli.compress", "main_decompress"),
    "rd": ("ganforge.cli.rd", "main"),
    "report": ("ganforge.cli.report", "main"),
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help") or sys.argv[1] not in COMMANDS:
        names = ", ".join(COMMANDS)
        print(f"usage: ganforge <command> [args]  (commands: {names})", file=sys.stderr)
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    command = sys.argv.pop(1)
    sys.argv[0] = f"ganforge {command}"
    module_name, function = COMMANDS[command]
    getattr(__import__(module_name, fromlist=[function]), function)()


if __name__ == "__main__":
    main()
