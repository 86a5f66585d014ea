"""Score a checkpoint: `python eval.py ckpt_path=outputs/runs/<date>/<time>/checkpoints/best.ckpt`.

A thin shim over `ganforge.cli.evaluate`; see README.md.
"""

from ganforge.cli.evaluate import main

if __name__ == "__main__":
    main()
