"""What runs the model on this device: probe, candidates, golden check and benchmark, selection, the
engine with its failover, and the drill that proves it."""
