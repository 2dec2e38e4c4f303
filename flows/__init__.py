from flows import dask_fixes

dask_fixes.apply()  # every process that runs Winnow's Dask work imports `flows` first
