"""Evaluation: what a model's capabilities get measured and pictured, the real-data references,
and the choices made before measuring."""
