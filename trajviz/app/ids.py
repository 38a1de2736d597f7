"""Every component id of the page, in one place (layout, callbacks, assets/playback.js
and the browser tests use these names)."""
from __future__ import annotations

from dataclasses import dataclass

from trajviz.viewmodel.selection import PANEL_KEYS

URL = "url"
DOWNLOAD = "download"

# left column
RUN = "run-picker"
RUNS_REFRESH = "runs-refresh"
RUNS_VERSION = "runs-version"
RUN_INFO = "run-info"
RUN_FIELDS = "run-fields"  # the pickers that need a readable run
EXPORT_BOX = "export-box"
TASK = "task-picker"
SLICE = "slice-picker"
SLICE_ROW = "slice-row"
LEARNERS = "learner-toggles"
MODE = "surface-mode"
EXPORT_WHAT = "export-what"
EXPORT_PRESET = "export-preset"  # screen, column or page size
ZOOM = "surface-zoom"  # fit the paths, or the full grid
SIDEBAR_TOGGLE = "sidebar-toggle"  # fold the controls (assets/playback.js)
PRESENT = "present-toggle"  # presentation mode (assets/playback.js)
EXPORT_FORMATS = ("png", "svg", "pdf", "html")
EXPORT = {fmt: f"export-{fmt}" for fmt in EXPORT_FORMATS}
EXPORT_STATUS = "export-status"

# the demo runs trained behind the page (trajviz demo; app/demo.py)
DEMO_LINE = "demo-line"
DEMO_TEXT = "demo-text"
DEMO_BAR = "demo-bar"
DEMO_POLL = "demo-poll"
DEMO_SEEN = "demo-seen"  # how many demo runs the picker has been told of

# new-run form and its background job
NEW_RUN = "new-run"  # the collapsible form, opened when there are no runs yet
JOB_FAMILY = "job-family"
JOB_LEARNERS = "job-learners"
JOB_STEPS = "job-steps"
JOB_META_STEPS = "job-meta-steps"
JOB_SEED = "job-seed"
JOB_NAME = "job-name"
JOB_START = "job-start"
JOB_STORE = "job-store"
JOB_POLL = "job-poll"
JOB_BAR = "job-bar"
JOB_STATUS = "job-status"

# main area
RUN_MESSAGE = "run-message"
WORKSPACE = "workspace"
TABS = "tabs"
NOTES = "notes"
MAIN_GRAPH = "surface-graph"
SURFACE_KEY = "surface-key"  # the HTML key over the surface: markers and learners
HONESTY = "honesty"
PANEL_GRAPH = {key: f"panel-{key}" for key in PANEL_KEYS}
PANEL_CARD = {key: f"panel-card-{key}" for key in PANEL_KEYS}
PANEL_NOTE = {key: f"panel-note-{key}" for key in PANEL_KEYS}  # the line under a panel
PANEL_SET = "panel-set"  # which set of panels (selection.PANEL_GROUPS) the page shows
SUMMARY = "summary"
SUMMARY_LIVE = "summary-live"  # a slider's summary until Dash re-renders SUMMARY (whatif.js)
META_GRAPH = "meta-graph"
META_CURVES = "meta-curves"
META_NOTE = "meta-note"  # how meta-training went: learners it made worse, the outer lrs


@dataclass(frozen=True)
class Player:
    """The ids of one playback bar: one frame index (``frame``) drives its graphs."""

    play: str
    back: str
    fwd: str
    slider: str
    interval: str
    speed: str
    frame: str
    data: str
    label: str


def _named(kind, prefix: str):
    """One id per field of the frozen dataclass ``kind``: "<prefix>-<field>"."""
    return kind(*(f"{prefix}-{f}" for f in kind.__dataclass_fields__))


def player(prefix: str) -> Player:
    return _named(Player, prefix)


INNER = player("inner")
META = player("meta")

# what if: the inner-loop controls (trajviz.app.whatif)
WHATIF_BOX = "whatif-box"
WHATIF_OPT = "whatif-optimizer"
WHATIF_LR = "whatif-lr"  # log10 of the learning rate
WHATIF_BETA = "whatif-beta"
WHATIF_BETA_ROW = "whatif-beta-row"  # hidden for SGD (no β)
WHATIF_STEPS = "whatif-steps"
WHATIF_PICK = "whatif-variant"
WHATIF_NAME = "whatif-name"
WHATIF_KEEP = "whatif-keep"
WHATIF_STATUS = "whatif-status"
WHATIF_STATUS_LIVE = "whatif-status-live"  # likewise for WHATIF_STATUS
WHATIF_SHOWN = "whatif-shown"  # {"run", "variant", "live"}: which inner setting is drawn

# birth map and click-to-launch (trajviz/app/birth.py)
BIRTH_CARD = "birth-card"
BIRTH_GRAPH = "birth-graph"
BIRTH_GRAPH_ROW = "birth-graph-row"  # the statistic picker and the map: hidden without a map
BIRTH_STAT = "birth-statistic"
BIRTH_LINES = "birth-lines"
BIRTH_TABLE = "birth-table"
BIRTH_COMPUTE = "birth-compute"
BIRTH_COMPUTE_ROW = "birth-compute-row"
BIRTH_JOB = "birth-job"
BIRTH_POLL = "birth-poll"
BIRTH_BAR = "birth-bar"
BIRTH_STATUS = "birth-status"
BIRTH_VERSION = "birth-version"
LAUNCHED = "launched"
LAUNCH_STATUS = "launch-status"
LAUNCH_NAME = "launch-name"
LAUNCH_KEEP = "launch-keep"
BIRTH_CANCEL = "birth-cancel"
BIRTH_ESTIMATE = "birth-estimate"


@dataclass(frozen=True)
class Progress:
    """Ids of one action's progress row (trajviz.app.actions): the row (hidden when idle),
    its line of text, bar and Cancel button, the action id Store and the poll Interval."""

    row: str
    text: str
    bar: str
    cancel: str
    job: str
    poll: str


def progress(prefix: str) -> Progress:
    return _named(Progress, f"{prefix}-progress")


WHATIF_PROGRESS = progress("whatif")
LAUNCH_PROGRESS = progress("launch")
