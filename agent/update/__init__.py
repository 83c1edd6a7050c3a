"""A model update, phase by phase (updater), and the store that makes each phase survive a restart."""
