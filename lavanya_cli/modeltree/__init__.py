"""The model tree: layout and voice lookup, config.yaml, Git LFS pointers, directory walks."""
