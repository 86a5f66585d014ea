"""Train a GAN: `python train.py norm=spectral act=lrelu gan_loss=hinge`.

A thin shim over `ganforge.cli.train`; see README.md for the config groups.
"""

from ganforge.cli.train import main

if __name__ == "__main__":
    main()
