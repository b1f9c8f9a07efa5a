"""alarscrew.anatomy."""
