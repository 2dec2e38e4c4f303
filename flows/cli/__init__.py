"""The `winnow` command (`app`), the demo corpus and its guided run (`demo`, `demo_run`), and the
supervisor that stops a run's whole process tree (`supervise`)."""
