"""alarscrew.planning."""
