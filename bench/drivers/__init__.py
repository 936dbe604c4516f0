"""One module per system. Each runs one workload per process and prints one JSON object.

python -m bench.drivers.<system> <workload> [--n N] [--seconds S] [--dir DIR]
"""
