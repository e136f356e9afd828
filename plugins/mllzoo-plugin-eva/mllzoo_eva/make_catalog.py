"""Generate ``mllzoo_eva/catalog.json``: ``python -m mllzoo_eva.make_catalog``.

The open_clip plugin's generator, restricted to the EVA archs and family ``eva``.
"""

from mllzoo_openclip.catalog import is_eva
from mllzoo_openclip.make_catalog import main

if __name__ == "__main__":
    main(family="eva", owns=is_eva, package="mllzoo_eva")
