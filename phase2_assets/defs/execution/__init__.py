"""Where and how steps execute: the executor, the pools, each step's share of the cores, and
freeing the slots of dead runs."""
