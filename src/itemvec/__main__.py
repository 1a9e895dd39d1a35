"""``python -m itemvec`` (and ``torchrun -m itemvec``): the command line."""

from itemvec.entry import main

main()
