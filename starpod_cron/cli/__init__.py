"""The ``starpod-cron`` command line: options in, one library call, rendered result out."""
