"""A fault-injection harness with a checker (``python -m bench.chaos [--seed N] [--seconds S]``,
as root): its own PostgreSQL in a database network namespace, three ``starpod-cron serve``
nodes each in its own namespace with its own address, stand-in destinations (the Bot API,
a webhook receiver) and a WebSocket client per node in a hub namespace; a workload; a fault
schedule from the seed (partitions, delay and loss, SIGKILL, SIGSTOP, PostgreSQL restarts,
clock skew), every fault's start and end logged; and a checker of every invariant (docs/chaos.md).
Exit 0: every invariant held; 1: one was violated; 77: cannot run here (one line says why)."""
