"""Jobs the app launches: specs (validated fields -> argv), run folders (status, metrics, log) and the manager."""
