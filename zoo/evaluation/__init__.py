"""Evaluation: what a model's capabilities get measured and pictured, the real-data references, the choices made before measuring."""
