"""The kernel layer: every fast path for MLPs under MSE, behind one dispatch.

Public surface: ``kernels(name)`` (the user's request, a context), ``requested()``,
``check_kernels``, ``recording()`` / ``ran_names`` (which backend ran), and
``choose_step`` / ``choose_plane`` / ``choose_birth`` (who runs an op), ``prepared_plane``.
See docs/kernels.md and ``trajviz.kernels.dispatch``.
"""
from trajviz.kernels.backends import choose_birth, choose_plane, choose_step, prepared_plane
from trajviz.kernels.dispatch import (
                                      BACKENDS,
                                      CHOICES,
                                      ENV,
                                      Choice,
                                      check_kernels,
                                      kernels,
                                      ran_names,
                                      recorded,
                                      recording,
                                      requested,
)

__all__ = ["BACKENDS", "CHOICES", "ENV", "Choice", "check_kernels", "choose_birth", "choose_plane",
           "choose_step", "kernels", "prepared_plane", "ran_names", "recorded", "recording", "requested"]
