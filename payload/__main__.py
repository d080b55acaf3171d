"""Sample app for `make run`: word statistics of a text, kept in SQLite.

Usage: wordstats [FILE...]   (default: the poem bundled in the archive)
"""

import sys

from wordstats.report import main

sys.exit(main(sys.argv[1:]))
