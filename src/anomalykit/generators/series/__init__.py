"""Time-series generators with labelled anomalies."""
