"""The kernel layer: every fast path for MLPs under MSE, behind one dispatch.

Public surface: ``kernels(name)`` (the user's request, a context), ``requested()``,
``check_kernels``, ``recording()`` / ``summary`` (which backend ran), and
``choose_step`` / ``choose_plane`` / ``choose_birth`` (who runs an op).
See docs/kernels.md and ``trajviz.kernels.dispatch``.
"""
from trajviz.kernels.backends import choose_birth, choose_plane, choose_step
from trajviz.kernels.dispatch import (BACKENDS, CHOICES, ENV, Choice, check_kernels, kernels,
                                      recording, requested, summary)

__all__ = ["BACKENDS", "CHOICES", "ENV", "Choice", "check_kernels", "choose_birth", "choose_plane",
           "choose_step", "kernels", "recording", "requested", "summary"]
