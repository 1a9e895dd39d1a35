"""``python -m itemvec`` (and ``torchrun -m itemvec``): the command line."""

from itemvec.cli import main

main()
