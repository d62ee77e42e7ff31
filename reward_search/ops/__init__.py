"""Cluster operations: Ray Jobs submission, live status of a running search, dashboard metrics."""
