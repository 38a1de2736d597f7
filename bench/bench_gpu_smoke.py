"""GPU smoke: a run on the CUDA device, with throughput, or one line saying it skipped.

Where torch sees a CUDA device, runs ``run_experiment`` on it (``device = "cuda"``) for a
sinusoid MLP (default 1-1024-1024-1, P = 1.05M; ``--hidden``), leap + random, a few
meta-steps, default record policy, and prints: the device, wall seconds per stage
(meta-training, the streamed held-out record, the surface), inner-step throughput
(rollout-steps per second of the held-out record: learners × T × K over its seconds),
surface throughput (grid points × tasks per second) and peak device memory
(``torch.cuda.max_memory_allocated``). It checks the run is finite and that a held-out path
recomputed on the device equals the recorded one bit for bit.

Without CUDA it prints ``skipped: ...`` and exits 0. ``--device cpu`` runs the very same
code on the CPU (what tests/test_scale.py does with a tiny model), to check the script.

Run: ``python bench/bench_gpu_smoke.py [--hidden 1024,1024] [--meta-steps 3] [--device cuda]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def smoke(device: str, hidden: list[int], meta_steps: int, resolution: int = 61) -> dict:
    import numpy as np
    import torch

    from trajviz.pipeline.experiment import run_experiment
    from trajviz.pipeline.recompute import recompute_paths
    from trajviz.spec.config import from_dict

    config = from_dict({"family": "sinusoid", "family_options": {"hidden": hidden}, "device": device,
                        "learners": ["leap", "random"], "allow_large": True,
                        "outer": {"meta_steps": meta_steps, "eval_every": max(1, meta_steps)},
                        "slices": {"resolution": resolution}})
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    run = run_experiment(config, run_id="gpu-smoke")
    wall = time.perf_counter() - started
    t = run.info["timings"]
    T, K = config.heldout_tasks, config.inner.steps
    record_s = sum(v for k, v in t.items() if k.startswith("record:"))
    surface_s = t.get("surface:pca", float("nan"))
    again = recompute_paths(run, "leap", tasks=[0])
    ok = bool(np.isfinite(run.views["pca"].surface.mean).all())
    return {
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
        "P": run.info["param_count"], "policy": run.info["record"]["policy"], "wall_s": wall,
        "meta_s": sum(v for k, v in t.items() if k.startswith("meta:")), "record_s": record_s,
        "surface_s": surface_s,
        "rollout_steps_per_s": len(run.learners) * T * K / record_s if record_s else float("nan"),
        "surface_points_per_s": resolution ** 2 * T / surface_s,
        "peak_device_gb": torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else 0.0,
        "finite": ok, "recomputed_losses_equal": bool(np.array_equal(
            again.losses, run.learners["leap"].losses[:1])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--hidden", default="1024,1024")
    parser.add_argument("--meta-steps", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=61)
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("skipped: torch sees no CUDA device (run with --device cpu to check the script)")
        return 0
    r = smoke(args.device, [int(w) for w in args.hidden.split(",")], args.meta_steps, args.resolution)
    print(f"{r['device']}: P={r['P']:,} record={r['policy']} wall {r['wall_s']:.1f} s "
          f"(meta {r['meta_s']:.1f}, record {r['record_s']:.1f}, surface {r['surface_s']:.1f}); "
          f"{r['rollout_steps_per_s']:,.0f} rollout-steps/s, {r['surface_points_per_s']:,.0f} "
          f"surface points/s; peak device memory {r['peak_device_gb']:.2f} GB; finite {r['finite']}; "
          f"recomputed path equal {r['recomputed_losses_equal']}")
    return 0 if r["finite"] and r["recomputed_losses_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
