"""Support for tests and benchmarks: tiny studies built on the spot, the graph run as the CLI
runs it, and a real ``dagster dev`` on a free port. Product code never imports it."""
