"""``python -m berth.agent`` and the zipapp's entry point."""

from __future__ import annotations

import sys

from berth.agent.main import main

if __name__ == "__main__":
    sys.exit(main())
