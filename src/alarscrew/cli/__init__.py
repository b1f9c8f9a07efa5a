"""alarscrew.cli."""
