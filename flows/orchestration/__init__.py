"""The Prefect flows (`curate`, `calibrate`, `train-classifier`), their run report as Prefect artifacts,
and the deployments (scheduled re-curation, ad-hoc runs) with a local Prefect server."""
