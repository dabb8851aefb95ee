import sys

from chatalign.cli.main import main

sys.exit(main())
