"""Labeling models on the graph: the driver plans, claims and publishes; workers compute."""
