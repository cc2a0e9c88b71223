"""fwbot's benchmarks (see bench/README.md)."""
