"""What the results mean: sanity tests, geometry, BFI, predictors, kill-switches, X3."""
