"""ShapesWorld: the procedural world, its ShapesEdit benchmark, and the embedded models trained on it."""
