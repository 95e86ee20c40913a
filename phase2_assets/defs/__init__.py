"""The Dagster layer: assets, partitions, checks, IO managers and jobs. It wires and records;
every number is computed in ``phase2_assets.compute``."""
