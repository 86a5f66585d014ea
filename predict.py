"""Run a trained generator: `python predict.py ckpt_path=... input=photo.jpg output=results/`.

A thin shim over `ganforge.cli.predict`; see README.md.
"""

from ganforge.cli.predict import main

if __name__ == "__main__":
    main()
