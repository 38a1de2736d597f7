"""``trajviz run | birthmap | whatif | list | serve | demo | export`` and the worker processes' entry points: thin layers over the Python API."""
