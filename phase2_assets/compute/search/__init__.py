"""Exact search and scoring: the float ground truth, recall and nDCG, one scoring route."""
