"""Benchmarking: timing a voice, the upstream way to compare with, a real-size random voice."""
