"""Collecting data: a capture proxy for the old pipeline's traffic, and synthetic examples."""
