"""``python -m pix2pix_qgis``: the CLI, with missing dependencies reported in the protocol."""

import sys

from .cli.bootstrap import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
