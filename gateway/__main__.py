import sys

from starpod_cron.cli.main import main

raise SystemExit(main(["serve", *sys.argv[1:]]))
