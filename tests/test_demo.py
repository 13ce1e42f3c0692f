"""The main job's plan (every notebook once, at demo size, each swap with its decoder) and the
runner's one queue: a job that ends lets the jobs waiting for it join the queue, and a free worker
takes the next job at once."""

import pytest
from conftest import tiny_params

from labkit import ablate, demo, plan, track
from labkit import drive as drive_module
from labkit.config import ParamError, SketchConfig, all_ablations
from labkit.jobs import Job, Outcome
from labkit.style.variants import VARIANTS


def test_the_demo_runs_every_notebook_once_at_demo_size(lab):
    decoders, faces = demo.decoder_jobs(), demo.face_jobs()
    swaps = [job for d in decoders for job in demo.swap_jobs(d.cfg.decoder_kind, f"run-of-{d.label}")]
    planned = [job.cfg.ablation for job in decoders + faces + swaps]
    assert sorted(set(planned)) == sorted(all_ablations()) and len(planned) == 18  # three decoders, one of each kind
    assert sorted(job.cfg.decoder_kind for job in decoders) == sorted({demo.decoder_kind(v) for v in VARIANTS})
    for job in swaps:  # each swap decodes with the decoder of its kind
        assert job.cfg.decoder_run == f"run-of-decoder_{job.cfg.decoder_kind.replace('+', '_')}"
    for job in faces:
        assert (job.cfg.experiment, job.cfg.synthetic_count, job.cfg.total_epochs, job.cfg.eval_every) == (
            demo.FACES,
            36,
            9,
            3,
        )
    assert all(job.cfg.experiment == demo.STYLE and job.cfg.steps == 30 for job in decoders + swaps)
    assert faces[0].cfg.ablation == "local_align" and faces[-1].cfg.ablation == "align"  # align reads its cache
    # a setting for every notebook reaches them all, and one that only faces have is refused, named
    assert all(
        j.cfg.precision == "fp32" for j in demo.decoder_jobs(["precision=fp32"]) + demo.face_jobs(["precision=fp32"])
    )
    with pytest.raises(ParamError, match="--set lambda_l1=5: the demo's --set takes a parameter every notebook has"):
        demo.plan_all(["lambda_l1=5"])
    with pytest.raises(ParamError, match="--set: unknown parameter 'lambda_l1': it is one of the face-sketch lab's"):
        demo.decoder_jobs(["lambda_l1=5"])


def test_a_finished_decoder_lets_its_swaps_start_and_a_failed_one_none():
    [decoder] = [j for j in demo.decoder_jobs() if j.cfg.decoder_kind == "avatar"]
    follow = demo.after()
    ok = Outcome(decoder, "abc123", "FINISHED", None, 1.0)
    assert [j.cfg.ablation for j in follow(ok)] == ["swap_avatar"] and follow(ok)[0].cfg.decoder_run == "abc123"
    assert follow(Outcome(decoder, "abc123", "FAILED", None, 1.0)) == []
    face = demo.face_jobs()[0]
    assert follow(Outcome(face, "f", "FINISHED", None, 1.0)) == []


def test_followers_join_the_queue(lab, monkeypatch):
    order = []

    def drive(job, fresh, progress, queued_since=None):
        order.append(job.label)
        return Outcome(job, job.label, "FINISHED", None, 0.0)

    monkeypatch.setattr(drive_module, "drive", drive)  # the local executor looks it up when a batch runs
    jobs = [Job(label, "", plan.notebook_path("baseline"), SketchConfig(experiment="q")) for label in ("a", "b", "c")]
    then = {"a": ["a1", "a2"], "a1": ["a11"]}
    outcomes = ablate.run_all(
        jobs,
        echo=lambda *_: None,
        then=lambda o: [Job(label, "", o.job.notebook, o.job.cfg) for label in then.get(o.job.label, [])],
    )
    assert order == ["a", "b", "c", "a1", "a2", "a11"] and len(outcomes) == 6


@pytest.mark.slow
def test_with_two_workers_a_follower_starts_while_a_longer_job_still_runs(lab, tmp_path):
    """No barrier: the short job's follower starts as soon as the short job ends, beside the long one."""
    long_ = tiny_params(
        tmp_path, "long", experiment="q", n_epochs=12, n_epochs_decay=12, eval_every=24, image_size=64, ngf=16, ndf=16
    )
    short = tiny_params(tmp_path, "short", experiment="q")
    follower = tiny_params(tmp_path, "follower", experiment="q", seed=1)
    jobs = plan.plan([long_, short])
    [after] = plan.plan([follower])
    outcomes = ablate.run_all(
        jobs, progress=False, workers=2, echo=lambda *_: None, then=lambda o: [after] if o.job.label == "short" else []
    )
    assert [o.status for o in outcomes] == ["FINISHED"] * 3
    c = track.client()
    runs = {o.job.label: c.get_run(o.run_id).info for o in outcomes}
    assert runs["short"].end_time <= runs["follower"].start_time < runs["long"].end_time
