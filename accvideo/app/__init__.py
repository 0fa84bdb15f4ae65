"""The app layer: job specs and the job manager, services (domain logic) and the Gradio layout."""
