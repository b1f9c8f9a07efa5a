"""alarscrew.cohort."""
