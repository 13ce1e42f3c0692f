"""The names under which a run is recorded in MLflow (metrics, tags, images and artifacts), and
the statuses runs and jobs end in.

Every name the lab records is written here once (the loop writes `fid_last`, compare and the lab
log read it); a test fails on a recorded name written anywhere else.
"""

import enum


class Status(enum.StrEnum):
    """How a run stands (MLflow's own run statuses, as the store holds them), or how a job of a
    batch ended (SKIPPED, BUSY)."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    SKIPPED = "SKIPPED"  # a job whose run finished before: nothing was run
    BUSY = "BUSY"  # a job whose parameters another command drives: refused

    @property
    def done(self) -> bool:
        """Its run is finished: now, or before."""
        return self in (Status.FINISHED, Status.SKIPPED)

    @property
    def failed(self) -> bool:
        """Its run ended without finishing: an error, or its process gone."""
        return self in (Status.FAILED, Status.KILLED)


# --- experiments: the MLflow UI opens one of this kind in its runs view (not its GenAI overview)
EXPERIMENT_KIND, TRAINING_EXPERIMENT = "mlflow.experimentKind", "custom_model_development"
# the runs view labkit's links open (FID columns shown, best first): MLflow's shared view state, by key
VIEW_KEY = "labkit"
SHARED_VIEW = "mlflow.sharedViewState.labkit"

# --- tags: what the run is
KIND = "labkit.kind"  # TRAIN for ablation runs, COMPARE for tables
TRAIN, COMPARE = "train", "compare"
ABLATION = "labkit.ablation"
RUN_KEY = "labkit.run_key"  # hash of the parameters that decide what is computed
LABEL = "labkit.label"  # the params file's stem (or the ablation): the run name's stem
PARAMS_FILE = "labkit.params_file"
NOTEBOOK = "labkit.notebook"  # the executed notebook on disk
ERROR = "labkit.error"  # why a run ended FAILED or KILLED
CHECKPOINT_FALLBACK = "falling back to the previous checkpoint"  # what a resume warns, the runner repeats
EARLIER_ERROR = "labkit.error.earlier"  # why an earlier attempt ended, once a resume FINISHED the run
HEARTBEAT = "labkit.heartbeat"  # the last beat (host, pid, step, phase, time), for other machines
NOTE = "mlflow.note.content"  # the run's note in the UI (Markdown)
QUEUED_SECONDS = "labkit.queued_seconds"  # how long its job waited in its batch before it ran
STALLS, LAST_STALL = "labkit.stalls", "labkit.last_stall"  # restarts after a stall, and what the last was
COMPARED = "labkit.compared"  # on a COMPARE run: the experiment it tabulates
SETTINGS = "labkit.settings"  # where and how fast the run computed, `device=auto, nproc=1, ...`: not params

# --- tags: sweeps (a parent run per sweep, its runs nested under it in the UI)
SWEEP = "sweep"  # KIND of a sweep's parent run
SWEEP_KEY = "labkit.sweep_key"  # hash of its runs' keys: how a rerun finds its parent
SWEEP_FACTORS = "labkit.sweep.factors"  # the swept parameters, comma-separated
PARENT = "mlflow.parentRunId"  # MLflow's own tag: the UI nests a run under its parent
FACTOR = "labkit.factor."  # + name: a swept parameter's value, on each run of a sweep
SWEEP_OBJECTIVE = "labkit.sweep.objective"  # which metric picked the winner, and on which faces
SWEEP_FILES = "sweep"  # artifact folder of a sweep's parent: its table and figures
SWEEP_RUNS = "sweep/runs.json"  # artifact of a sweep's parent: its runs' ids, which compare tabulates

# --- tags: what it ran on (the code, the machine, the data)
SOURCE_NAME, SOURCE_TYPE = "mlflow.source.name", "mlflow.source.type"  # MLflow's own: the UI's source column
SOURCE_COMMIT = "mlflow.source.git.commit"
GIT_DIRTY = "labkit.git.dirty"
GIT_DIFF = "provenance/git_diff.patch"  # artifact: uncommitted changes the run ran with
SEED = "labkit.seed"
PYTHON = "labkit.python"
VERSIONS = "labkit.versions"  # the installed versions that matter, `labkit 0.1.0, torch 2.14.1, ...`
DEVICE = "labkit.device"
SPEED = "labkit.speed"  # how the run computed: precision, optimiser, compiled or eager
DATA_FINGERPRINT = "labkit.data.fingerprint"
DATA_ROOT = "labkit.data.root"
DATA_SYNTHETIC = "labkit.data.synthetic"
DATA_N_TRAIN, DATA_N_TEST = "labkit.data.n_train", "labkit.data.n_test"
FID_BACKBONE = "fid.backbone"  # inception, or random-init (smoke numbers)
FID_N_REAL = "fid.n_real"
FID_COMPARABLE = "fid.comparable"
FID_FACES = "fid.faces"  # digest of the test faces' names in order: same digest, same faces left out
FID_INTERVAL = "fid.interval"  # how the intervals were made: jackknife-2 (before: jackknife, fid.bootstrap_resamples)
INIT_FROM = "labkit.init_from"  # the weights a run started from (init_from): networks, file(s), digest
FID_INFERENCE = "fid.inference"  # train (as upstream's test.py) or eval: how the sketches were generated
FID_REGION = "fid.region"  # canvas (the padded square) or face (the face's rectangle on it)
FID_QUANTIZE = "fid.quantize"  # how a generated sketch became uint8: round
FID_BEST_SELECTED_ON = "fid.best_selected_on"  # "test" (optimistic) or "validation"
VGG_WEIGHTS = "style.vgg_weights"
VGG_COMPARABLE = "style.comparable"  # yes, or NO: why (a random-init encoder's smoke numbers)

# --- metrics: per evaluation (step = epoch)
FID, KID = "fid", "kid"
# --- metrics: summaries (the runs table shows a metric's last value only)
FID_LAST, KID_LAST = "fid_last", "kid_last"
FID_BEST, FID_BEST_EPOCH, FID_MEAN = "fid_best", "fid_best_epoch", "fid_mean"
FID_N_FAKE = "fid_n_fake"
FID_VAL, FID_VAL_BEST = "fid_val", "fid_val_best"  # on the validation faces (val_fraction > 0)
LR, EPOCH_SECONDS = "lr", "epoch_seconds"  # per epoch
DECODER_SECONDS = "decoder_seconds"  # a decoder's training, once
FID_ALIGNED = "fid_aligned"  # +align: against the warped test sketches (the headline FID is not)
# --- metrics: a swap run's, the mean over its content x style pairs, and its peak memory
CONTENT_LOSS, DISTINCT_PATCHES, TV, SWAP_SECONDS = "content_loss", "distinct_patches", "tv", "swap_seconds"
PEAK_RSS_MB, PEAK_CUDA_MB = "peak_rss_mb", "peak_cuda_mb"
# --- metrics: +align, once per run: region overlap of the photo's and the sketch's parsing maps
ALIGN = "align"  # align_iou_before, align_dice_after, align_epe_after, align_iou_after.cuhk


# --- images (MLflow image keys, a step slider each) and fixed artifact files
SAMPLES = "samples"  # photo | real sketch | generated, per evaluation
LAST_SAMPLES = "samples/last.png"  # the newest sample grid, at a fixed path
ERROR_HEATMAP = "error_heatmap"
GLAD_VIEWS = "glad_views"  # +glad: gradient maps and the gradient error of the final model
LOCAL_VIEWS = "local_views"  # +local: each local network's output, the composite, global and fused
CHAMFER_VIEWS = "chamfer_views"  # the strokes the distance-transform loss charges, missing and extra
RECONSTRUCTIONS = "reconstructions"  # a decoder's input | reconstruction, per logged step
STYLISED = "stylised"  # a swap run's content x style grid
SWAP_HEATMAPS = "swap_heatmaps"  # where each content patch found its style patch, and how surely
STYLE_LOSS = "style_loss"  # a swap run's Gram distance to its styles (the lab log reads it)
STALL_STACKS = "stalls/stall-{restart}.txt"  # artifact: every thread's stack when a run stalled
NOTEBOOK_DIR = "notebook"  # the executed notebook, attached to its run
FID_TABLE = "fid_table.json"  # the compare run's table, one row per setting
JACKKNIFE = "fid/jackknife.npz"  # the last evaluation's values with each face (and pair) left out, for pairing
BOOTSTRAP = "fid/bootstrap.npz"  # what runs logged before the jackknife hold instead: bootstrap replicates
ALIGN_VIEWS = "align_views"  # +align: outlines before / after and the field, per face
ALIGN_OVERLAP = "align_overlap"  # +align: each region's IoU before and after
ALIGN_MODE = "labkit.align.mode"  # tag: the alignment the training sketches had
LOCAL_FOREGROUND = "labkit.local.foreground"  # tag: +local's hair / background regions: parsing maps or the rule


def run_lease(run_key: str) -> str:
    """The lease that whoever drives the run of this key holds (a runner, and `labkit runs` asks)."""
    return f"key-{run_key}"


def owner_lease(run_id: str) -> str:
    """The lease the run's owner holds: while it is held the run is alive, whatever its status says."""
    return f"run-{run_id}"


def ci(metric: str, side: str) -> str:
    """`fid_ci_low`, `kid_ci_high`: a bound of a metric's 95% interval."""
    return f"{metric}_ci_{side}"


SUBSET_SEPARATOR = "."  # runs logged before it wrote "/" (their charts came before the headline's)


def per_subset(metric: str, subset: str) -> str:
    """`fid.cuhk`, `kid.xm2vts`, `fid.n_real.ar`: a metric or tag for one subset of the test set. Not
    `fid/cuhk`: MLflow's UI puts a metric with a '/' in a chart section of its own, ahead of the
    section that holds the headline `fid`."""
    return f"{metric}{SUBSET_SEPARATOR}{subset}"


def align_metric(score: str, when: str) -> str:
    """`align_iou_before`, `align_epe_after`: how well the sketches' regions sit on the photos'."""
    return f"{ALIGN}_{score}_{when}"
