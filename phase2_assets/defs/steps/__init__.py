"""What every asset step shares: the methods' settings from the study, the runtime resource,
progress lines, provenance metadata, all-or-nothing outputs and the study-wide tables' plumbing."""
