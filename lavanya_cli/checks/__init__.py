"""Checks and repairs of a model tree: verify, deep checks, statistics, manifests, permissions, .gitattributes."""
