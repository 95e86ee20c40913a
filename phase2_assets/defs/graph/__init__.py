"""The graph's shape: partitions derived from the study, groups, one job per partition level, the
plan's run requests and the tier sensors."""
