"""Training: the one loop (any tf.distribute strategy), its callbacks, run folders and resume."""
