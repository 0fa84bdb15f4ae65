"""The app's domain logic, with no Gradio component in it: what the layout's handlers call.

- `compare`: the teacher against its students on one prompt and seed, timed per stage;
- `models`: the models the app can use (bundled, finished runs, real checkpoints) and their provenance;
- `job_views`: launching a job from form values, one job's view, the forms' fields;
- `toy`: the paper's 1D toy for the slider values.

Every function raises `ValueError` naming the argument, the rule and the value; the layout turns
that into `gr.Error` with the same sentence. Heavy work runs one at a time (`compare.GENERATE_LOCK`).
"""
