"""The Dagster layer: it wires the computation in ``phase2_assets.compute`` into assets, checks,
jobs and sensors, and records what each step did; it computes no number itself.

- ``assets/``    the study's assets and their checks, one module per stage of the plan;
- ``graph/``     the graph's shape: partitions, groups, jobs, the plan's run requests, sensors;
- ``execution/`` where and how steps run: executors, pools, thread shares, dead runs' slots;
- ``storage/``   where files live: IO managers, locations, the gate file, the study stamp;
- ``steps/``     what every step shares: settings, runtime resource, progress, provenance;
- ``build.py``   one ``Definitions`` object from a study config.
"""
