"""Dagster components of this project (``dg list components``): the study as one ``dg`` object."""
