"""The stage engine and the artifact store: declared stages planned and run over shards, keyed and
cached, with no Prefect (`stage`, `corpus`, `executor`, `store`, `layers`, `index`, `context`, `publish`)."""
