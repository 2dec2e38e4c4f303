"""Dask: the cluster a run uses and its per-worker warm-up (`cluster`), connected components of large
edge lists (`components`), and a fix for a race in dask (`dask_fixes`)."""
