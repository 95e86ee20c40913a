"""Where the study's files live: IO managers (one plain file per asset partition), the data folder
or object store, the kill-switch gate file and the study stamp."""
