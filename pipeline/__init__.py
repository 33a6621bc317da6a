"""drivecodec pipeline: CLI, datasets, the closed-loop video coder, evaluation and reports."""
