"""alarscrew.report."""
