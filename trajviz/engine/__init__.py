"""The computations: the inner loop, learners and their shared outer loop, path metrics, curvature, slices, surfaces, per-step diagnostics, and the executor seam (in-process or Dask)."""
