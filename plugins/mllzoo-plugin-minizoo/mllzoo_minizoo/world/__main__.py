"""``python -m mllzoo_minizoo.world``: build the concept world (see :mod:`.build`)."""

from .build import main

main()
