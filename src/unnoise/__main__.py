"""python -m unnoise (how torchrun starts it: torchrun --nproc-per-node N -m unnoise train ...)."""

import sys

from .cli import main

sys.exit(main())
