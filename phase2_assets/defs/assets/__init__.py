"""Asset factories: each module builds its assets from the study config and its partitions."""
