"""Getting the collections and their vectors: BEIR files, downloads, encoders, atomic storage."""
