"""The multi-process deployment on one machine (``phase2 stack up`` / ``down``)."""
