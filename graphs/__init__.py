"""dragoman.graphs: graph files (YAML), the graph runtime and the `dragoman` command line."""
