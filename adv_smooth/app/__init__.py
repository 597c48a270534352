"""Entry points' tasks (train, evaluate, report) and their plumbing: CLI, building from configs, run dirs."""
