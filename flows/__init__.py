"""How Winnow runs: the orchestration around the stage logic in `tasks/`.

- `flows.stages`: one module per stage, declaring it to the engine (phases, columns, corpus-wide steps,
  report section), and the ordered stage list.
- `flows.engine`: the stage engine and the artifact store: keys, reads and writes, layers, the executor that
  maps shards, the corpus-wide engine and its persistent index. No Prefect.
- `flows.parallel`: Dask: the cluster a run uses, per-worker warm-up, connected components, a dask fix.
- `flows.report`: the run report: sections, the HTML page, why each stage reran, rejected examples.
- `flows.orchestration`: the Prefect flows (`curate`, `calibrate`, `train-classifier`) and deployments.
- `flows.cli`: the `winnow` command and the demo.
- `flows.config`, `flows.options`: the one typed config, composed from the stages' params.
"""

from flows.parallel import dask_fixes

dask_fixes.apply()  # every process that runs Winnow's Dask work imports `flows` first
