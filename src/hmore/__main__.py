import sys

from hmore.cli import main

sys.exit(main())
