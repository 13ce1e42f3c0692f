"""The names under which a run is recorded in MLflow: metrics, tags and artifacts.

Whatever one module writes and another reads (the loop writes `fid_last`, compare and the lab
log read it) is named here once.
"""

# --- experiments: the MLflow UI opens one of this kind in its runs view (not its GenAI overview)
EXPERIMENT_KIND, TRAINING_EXPERIMENT = "mlflow.experimentKind", "custom_model_development"

# --- tags: what the run is
KIND = "labkit.kind"  # TRAIN for ablation runs, COMPARE for tables
TRAIN, COMPARE = "train", "compare"
ABLATION = "labkit.ablation"
RUN_KEY = "labkit.run_key"  # hash of the parameters that decide what is computed
LABEL = "labkit.label"  # the params file's stem (or the ablation): the run name's stem
PARAMS_FILE = "labkit.params_file"
NOTEBOOK = "labkit.notebook"  # the executed notebook on disk
ERROR = "labkit.error"  # why a run ended FAILED or KILLED
HEARTBEAT = "labkit.heartbeat"  # the last beat (host, pid, step, phase, time), for other machines
NOTE = "mlflow.note.content"  # the run's note in the UI (Markdown)

# --- tags: sweeps (a parent run per sweep, its runs nested under it in the UI)
SWEEP = "sweep"  # KIND of a sweep's parent run
SWEEP_KEY = "labkit.sweep_key"  # hash of its runs' keys: how a rerun finds its parent
SWEEP_FACTORS = "labkit.sweep.factors"  # the swept parameters, comma-separated
PARENT = "mlflow.parentRunId"  # MLflow's own tag: the UI nests a run under its parent
FACTOR = "labkit.factor."  # + name: a swept parameter's value, on each run of a sweep

# --- tags: what it ran on
DEVICE = "labkit.device"
SPEED = "labkit.speed"  # how the run computed: precision, optimiser, compiled or eager
DATA_FINGERPRINT = "labkit.data.fingerprint"
DATA_ROOT = "labkit.data.root"
DATA_SYNTHETIC = "labkit.data.synthetic"
FID_BACKBONE = "fid.backbone"  # inception, or random-init (smoke numbers)
FID_N_REAL = "fid.n_real"
FID_COMPARABLE = "fid.comparable"
FID_FACES = "fid.faces"  # digest of the test faces' names in order: same digest, same resamples
FID_RESAMPLES = "fid.bootstrap_resamples"
FID_BEST_SELECTED_ON = "fid.best_selected_on"  # "test" (optimistic) or "validation"
VGG_WEIGHTS = "style.vgg_weights"

# --- metrics: per evaluation (step = epoch)
FID, KID = "fid", "kid"
# --- metrics: summaries (the runs table shows a metric's last value only)
FID_LAST, KID_LAST = "fid_last", "kid_last"
FID_BEST, FID_BEST_EPOCH, FID_MEAN = "fid_best", "fid_best_epoch", "fid_mean"
FID_N_FAKE = "fid_n_fake"
FID_VAL, FID_VAL_BEST = "fid_val", "fid_val_best"  # on the validation faces (val_fraction > 0)
FID_ALIGNED = "fid_aligned"  # +align: against the warped test sketches (the headline FID is not)
# --- metrics: +align, once per run: region overlap of the photo's and the sketch's parsing maps
ALIGN = "align"  # align_iou_before, align_dice_after, align_epe_after, align_iou_after/cuhk


# --- images (MLflow image keys, a step slider each) and fixed artifact files
SAMPLES = "samples"  # photo | real sketch | generated, per evaluation
LAST_SAMPLES = "samples/last.png"  # the newest sample grid, at a fixed path
ERROR_HEATMAP = "error_heatmap"
NOTEBOOK_DIR = "notebook"  # the executed notebook, attached to its run
BOOTSTRAP = "fid/bootstrap.npz"  # the last evaluation's bootstrap replicates, for paired comparisons
ALIGN_VIEWS = "align_views"  # +align: outlines before / after and the field, per face
ALIGN_OVERLAP = "align_overlap"  # +align: each region's IoU before and after
ALIGN_MODE = "labkit.align.mode"  # tag: the alignment the training sketches had
LOCAL_FOREGROUND = "labkit.local.foreground"  # tag: +local's hair / background regions: parsing maps or the rule


def ci(metric: str, side: str) -> str:
    """`fid_ci_low`, `kid_ci_high`: a bound of a metric's 95% bootstrap interval."""
    return f"{metric}_ci_{side}"


def per_subset(metric: str, subset: str) -> str:
    """`fid/cuhk`, `kid/xm2vts`, `fid.n_real/ar`: a metric or tag for one subset of the test set."""
    return f"{metric}/{subset}"


def align_metric(score: str, when: str) -> str:
    """`align_iou_before`, `align_epe_after`: how well the sketches' regions sit on the photos'."""
    return f"{ALIGN}_{score}_{when}"
