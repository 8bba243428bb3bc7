"""`python -m bs4nn` is the `bs4nn` command."""
import sys

from bs4nn.cli import main

sys.exit(main())
