"""The page's words: the one-line pitch and the one-click explanations (teaching).

Each explanation is a title and a few short paragraphs of plain text.
"""
from __future__ import annotations

TAGLINE = ("Watch how a model learns: every learner's inner-loop path from its meta-learned "
           "start θ0, on a 2D slice of the loss surface.")

HOW_TO_READ = (
    ("Pick a run, a held-out task (or the mean over tasks) and the learners to compare on the "
     "left. Press ▶ Play: a dot walks each learner's path step by step, and the cursor in "
     "every panel on the right moves with it."),
    ("A good initialisation (Leap's aim, Flennerhag et al., ICLR 2019) gives short, straight paths "
     "that go downhill at every step: small path length, few reversals (oscillation), loss that "
     "falls step after step (monotonicity)."),
    ("The picture is a 2D slice of a space with many more dimensions. The card “What the slice "
     "keeps and hides” says how much of the paths the slice holds and how far they stray from "
     "it; read it before trusting a picture."),
    ("The Meta-training tab shows how each learner's θ0 moved while it was meta-learned, and "
     "how its held-out path length and loss fell with it."),
)

EXPLAIN: dict[str, tuple[str, tuple[str, ...]]] = {
    "surface": ("What is this picture?", (
        ("The coloured background is the loss on a plane through parameter space: light is low "
         "loss, slate is high. Each learner's inner loop (K steps of gradient descent from its θ0) "
         "is projected onto the plane."),
        ("○ marks the start θ0, ◆ the end after K steps, and the large dot with a short tail "
         "is the current step of playback. The faint line is the whole path."),
        ("PCA slices use the two directions along which the recorded paths vary most; the axis "
         "titles say how much of the paths' variance each direction holds."),
    )),
    "loss": ("Loss: recorded and on the slice", (
        ("Solid: the loss the inner loop actually recorded at each step. Dashed: the loss the "
         "surface shows at the projected point on the slice."),
        ("Where the two agree, the slice is honest about this path. Where they part, the path "
         "left the plane: the picture's colours under the dot do not tell you the real loss."),
    )),
    "length": ("Path length", (
        ("How far the parameters travelled so far, on Leap's loss manifold: the sum over steps of "
         "√(‖Δθ‖² + Δf²), parameter movement and loss change together."),
        ("Leap meta-learns the θ0 that makes this short on average over tasks: a short path means "
         "the task is quick and easy to learn from there."),
    )),
    "oscillation": ("Oscillation: cosine between successive updates", (
        ("The cosine of the angle between one update Δθ and the next. +1: the path keeps going the "
         "same way. Below 0: it turned back, a zig-zag across a narrow valley."),
        ("The summary table's oscillation is the fraction of successive pairs with a negative "
         "cosine. The first two steps have no previous update, so the line starts at step 2."),
    )),
    "monotonicity": ("Monotonicity", (
        ("The fraction of steps so far in which the recorded loss went down. 1 means every step "
         "helped; lower means the optimiser overshot or bounced."),
        ("With minibatches a step can raise the loss by noise alone, so values a little below 1 "
         "are normal."),
    )),
    "residual": ("Off-plane residual", (
        ("The distance from each recorded point θ to its projection on the slice: the part of the "
         "path the picture cannot show. 0 means the point lies on the plane."),
        ("Compare it with the size of the path on the plane: a residual as large as the path "
         "itself means the 2D picture is mostly shadow."),
    )),
    "sharpness": ("Sharpness and the stability threshold", (
        ("Sharpness is the largest eigenvalue λ_max of the loss's Hessian at each step: the "
         "curvature along the steepest direction of the bowl the path is in (measured by "
         "Hessian-vector products and power iteration on that step's batch)."),
        ("The dashed red line is the stability threshold of the inner optimiser: 2/lr for plain "
         "gradient descent, (2+2β)/lr with heavy-ball momentum. On a quadratic, gradient "
         "descent zig-zags once lr·λ_max > 2: each step overshoots the valley floor along the "
         "sharpest direction by more than it started, so the path oscillates and, if it stays "
         "above the line, blows up."),
        ("× marks where a path first crosses the threshold. Paths in real networks often hover "
         "near it, oscillating but not exploding: the edge of stability (Cohen et al., ICLR "
         "2021). For Adam the raw Hessian has no such line; the panel draws the preconditioned "
         "sharpness λ_max(P⁻¹H) against (2+2β1)/((1−β1)·lr) instead, and says so below it."),
    )),
    "lambda_min": ("Smallest eigenvalue λ_min: is the path at a saddle?", (
        ("The Hessian's eigenvalues are the curvatures of the loss along its principal "
         "directions. λ_min is the smallest: the most downward-curving direction at that step."),
        ("Above the zero line every direction curves up: the path is inside a bowl. Below it the "
         "loss curves downward along at least one direction: the path is at a saddle point or on "
         "a ridge. Gradient descent is not stuck there, but it leaves slowly until it finds "
         "that downhill direction; paths that start at negative curvature often show a "
         "plateau in the loss before it drops."),
        ("Small networks are computed exactly (the whole Hessian, for up to 256 parameters); "
         "larger ones by Lanczos iterations, with a bar: the true value lies at or below the "
         "dot, within the bar."),
    )),
    "trace": ("Trace: the total curvature", (
        ("The trace is the sum of all the Hessian's eigenvalues: how much the loss bends, added "
         "over every direction. A large trace means a narrow valley in many directions at once; "
         "a trace that falls along the path means training is settling into a flatter region."),
        ("Beside the sharpness (the single largest curvature) it tells whether the curvature is "
         "concentrated in a few directions or spread over many. For large models it is "
         "estimated from random probes (Hutchinson's method); the bar is ±2 standard errors."),
    )),
    "spectrum": ("Eigenvalue density at the cursor's step", (
        ("A histogram of all the Hessian's eigenvalues at the step the cursor is on, smoothed, "
         "on a log scale: each curve is one learner. Press ▶ Play to watch it change step by "
         "step; between the steps that were kept it shows the last one before the cursor."),
        ("Mass left of zero is negative curvature (saddle directions). A few eigenvalues far to "
         "the right are the sharp directions that limit the step size; a tall peak at zero means "
         "most directions barely change the loss at all, which is typical of networks."),
        ("Small networks are exact; larger ones use stochastic Lanczos quadrature (Ghorbani et "
         "al., 2019), which finds the extreme eigenvalues well and the bulk approximately."),
    )),
    "straight": ("The straight line from θ0 to θ_K", (
        ("The dotted curve is the loss along the straight line from where training started "
         "(θ0) to where it ended (θ_K); step i on the axis is the point i/K of the way along it. "
         "The solid curve is the loss along the path gradient descent actually took. Both begin "
         "and end at the same two points."),
        ("If the straight line goes downhill all the way (monotone), there was no barrier "
         "between start and end: the path's detours were not needed to get around a hill. "
         "Goodfellow et al. (2015) found this for many networks. A bump on the straight line "
         "means the path had to go around it."),
        ("Leap shortens the path itself; a short path from a good θ0 stays close to this line. "
         "The dash-dot curve is the same segment between the projected ends on the slice, read "
         "off the picture: where it differs from the dotted one, the slice hides the barrier."),
    )),
    "grad_norm": ("Gradient norm", (
        ("The length ‖∇f(θ_i)‖ of the gradient at each step, on that step's batch. A flat region "
         "(a small gradient) makes slow progress even with a good step size."),
        ("A gradient norm that grows step after step, with the loss, is the signature of a step "
         "size above the stability threshold (see the sharpness panel)."),
    )),
    "update_norm": ("Update norm", (
        ("How far each step moved the parameters: ‖θ_{i+1} − θ_i‖ (none after the last step). "
         "For plain gradient descent it is lr × the gradient norm; momentum and Adam reshape it."),
        ("Tiny updates mean the step is too small or the region too flat; updates that grow "
         "mean the path is overshooting."),
    )),
    "slice": ("What can a 2D slice hide?", (
        ("A network has thousands of parameters; the picture shows two directions. Two paths that "
         "look close may be far apart in the directions you cannot see, and a path that seems to "
         "cross a ridge may have gone around it."),
        ("Explained variance says how much of the paths' spread the two axes hold (PCA "
         "slices). The off-plane residual says how far each point is from the plane. The loss "
         "panel compares the recorded loss with the surface under the projected point."),
        ("A random or three-point slice has no explained variance: judge it by the residual "
         "and the loss gap alone. The exact slice of a 2-parameter model hides nothing."),
        ("A Hessian slice spans the two sharpest directions (top Hessian eigenvectors) at a "
         "learner's θ0: where the loss curves most, and where a too-large step zig-zags."),
    )),
    "summary": ("Reading the summary table", (
        ("Each cell is the mean over the held-out tasks with a 95% Student-t interval in brackets, "
         "cut at the metric's possible range (no negative lengths, no fractions above 1). "
         "Diverged paths are left out of the mean and counted in the last column; a cell "
         "says “over k of T tasks” when its mean covers fewer than all."),
        ("Path length, oscillation, final loss and loss AUC (the mean loss over the K steps) are "
         "better when lower; monotonicity when higher. The best mean in each column is bold. "
         "Overlapping intervals mean the difference may be chance."),
        ("A learner that diverged on any task, or whose final loss is not below the random "
         "initialisation's (it learned nothing a random start does not), is never bold: a short "
         "path that goes nowhere is not a good path."),
    )),
    "meta": ("Meta-training", (
        ("Every learner starts meta-training from the same random θ0 and sees the same tasks. The "
         "left plot follows each learner's θ0 across meta-steps on the slice (task-mean surface)."),
        ("The right plots show the held-out path length and loss AUC of the inner loops started "
         "from θ0 at each evaluation: Leap should shorten the path fastest. 'random' never "
         "meta-learns, so its θ0 stays put: the baseline."),
    )),
    "worse": ("Why meta-training can make a learner worse", (
        ("Every learner starts from the same random θ0. Its held-out final loss and AUC are "
         "measured at the first and the last evaluation of meta-training; when they end more "
         "than 5% above where they started (or above the random initialisation's), the line "
         "says so with the numbers. The implementation is not suspect by default: these are "
         "the usual causes."),
        ("FOMAML drops MAML's second-order term: it follows the query gradient at the end of "
         "the inner loop as if the inner loop did not depend on θ0. With many inner steps, "
         "or an adaptive inner optimiser such as Adam, that approximation can point the wrong "
         "way, and θ0 drifts somewhere worse; MAML, which differentiates through the inner "
         "loop, does not have this problem."),
        ("For any learner, an outer learning rate too large overshoots: the curves in this tab "
         "rise or jump. Set outer.lr = \"tune\" to pick each learner's own rate from a small "
         "grid, judged on validation tasks and never on the held-out ones."),
        ("A collapsed θ0: most ReLU units output 0 on every held-out input (they are dead, no "
         "gradient reaches them) or the held-out paths barely move; the network has gone "
         "nearly constant. A short path there is not a good path."),
    )),
    "newrun": ("Starting a run", (
        ("The run trains in the background on this machine and is written as a new run folder; "
         "the run picker lists it when it is done. Small settings take a minute or two."),
    )),
    "birthmap": ("Where should training start? The birth map", (
        ("Every point of the slice is taken as an initialisation θ0 and trained with the run's "
         "inner loop on held-out tasks; the colour is how fast training converged from there, "
         "averaged over the tasks (pick the statistic above; lower is faster). Light is fast."),
        ("Leap's corollary (Flennerhag et al., ICLR 2019): “new modules should be born where they "
         "may be least specialized but have fastest mean predicted convergence speed”. The ★ birth "
         "point follows it: among the least specialised quarter of the grid (specialisation = how "
         "unevenly a point serves the tasks, the coefficient of variation of per-task loss AUC), "
         "the point with the fastest mean convergence."),
        ("“predicted” is a cheap forecast of the AUC from the first 3 steps alone; the lines "
         "below the map print its rank correlation with the measured speed, so you can judge it."),
        ("○ marks each learner's θ0 projected on the slice; the table gives the map's value at "
         "θ0 itself (trained exactly, not read off the grid) and its gap to the birth point. "
         "Click anywhere on the map or the surface to train from that point."),
    )),
    "launch": ("Train from any point", (
        ("Click anywhere on the 2D surface (or the birth map): the held-out tasks are trained "
         "from that point, with the run's own inner loop and minibatches, and drawn as “click-N” "
         "beside the learners, in every panel. One launch runs at a time. In 3D a drag turns "
         "the surface and a click launches nothing: switch to 2D contour to pick a point."),
        ("Keep it to store the point in the run as a named initialisation: it is then compared "
         "like a learner in every view, the summary table and the exports."),
    )),
}
