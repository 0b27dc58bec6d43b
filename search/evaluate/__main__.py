import sys

from search.evaluate.cli import main

sys.exit(main())
