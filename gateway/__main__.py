"""``python -m gateway [options]`` is ``starpod-cron serve [options]``."""

import sys

from starpod_cron.cli.main import main

raise SystemExit(main(["serve", *sys.argv[1:]]))
