"""Subcommands of the `dragoman` CLI, one module each (see `dragoman.graphs.cli`)."""
