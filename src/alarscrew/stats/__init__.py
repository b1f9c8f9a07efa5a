"""alarscrew.stats."""
