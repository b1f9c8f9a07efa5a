"""alarscrew.io."""
