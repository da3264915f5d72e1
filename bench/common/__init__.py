"""Helpers shared by the bench scripts (a package, so that `make bench` does not run it as a bench)."""
