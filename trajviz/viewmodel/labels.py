"""Words and numbers for people: number formatting, slice names, task labels, axis titles
(view-model, no plotly). Re-exported by ``trajviz.viewmodel.selection``."""
from __future__ import annotations

import numpy as np

from trajviz.data.run import Run, View


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for people: 3 significant digits, '—' for missing."""
    if x is None or not np.isfinite(x):
        return "—" if x is None or np.isnan(x) else ("∞" if x > 0 else "−∞")
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits}g}"
    return f"{x:.{max(1, digits - 1)}e}"


def slice_name(kind: str) -> str:
    """'PCA slice', 'exact slice', 'three-point slice', 'random slice', 'Hessian slice …'."""
    return {"pca": "PCA slice", "three_point": "three-point slice",
            "hessian": "Hessian slice (sharpest directions)"}.get(kind, f"{kind} slice")


#: What the task-mean view is (it is not a path any learner took).
MEAN_CAVEAT = "(averaged points, not a path taken)"


def task_label(run: Run, task: int | None) -> str:
    """'mean of 8 held-out tasks (averaged points, not a path taken)' or
    'task 3 · amplitude 2.1, phase 0.4'. The mean averages projected coordinates step by
    step: no learner took that path, and the label says so."""
    n = len(run.task_ids)
    if task is None:
        return f"mean of {n} held-out tasks {MEAN_CAVEAT}"
    parts = []
    for key, values in run.task_info.items():
        v = np.asarray(values)
        if v.ndim == 1 and v.shape[0] == n and v.dtype.kind in "biuf":
            parts.append(f"{key} {fmt(float(v[task]), 2)}")
    label = f"task {task}"
    if str(run.task_ids[task]) != str(task):
        label += f" (id {run.task_ids[task]})"
    return label + (" · " + ", ".join(parts[:3]) if parts else "")


def axis_titles(run: Run, view: View) -> tuple[str, str]:
    """Axis titles that state what each axis is and how much of the paths it explains."""
    slc = view.slice
    ev = np.asarray(slc.explained_variance, dtype=float).ravel()
    names = list(run.info.get("param_names") or [])
    titles = []
    for i in range(2):
        if slc.kind == "pca":
            share = f" ({100 * ev[i]:.1f}% var.)" if ev.size > i and np.isfinite(ev[i]) else ""
            titles.append(f"PC{i + 1}{share}")
        elif slc.kind == "exact":
            name = names[i] if len(names) == 2 else f"θ[{i}]"
            titles.append(f"{name} (exact parameter axis)")
        elif slc.kind == "hessian":
            share = f" ({100 * ev[i]:.1f}% var.)" if ev.size > i and np.isfinite(ev[i]) else ""
            titles.append(f"Hessian eigenvector {i + 1}{share}")
        elif slc.kind == "three_point":
            titles.append(f"direction {i + 1} (plane through three θ0)")
        else:
            titles.append(f"{slc.kind} direction {i + 1}")
    return titles[0], titles[1]
