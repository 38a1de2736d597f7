import sys

from trajviz.cli.main import main

sys.exit(main())
