"""Few-step students (zoo/models/diffusion/students.py): the halving grid and progressive
distillation's target against their definitions, and recipes/distill.py's command line end to
end on a tiny teacher — students exported beside the teacher it leaves untouched, a run
interrupted between stages resumed to the same weights, bad requests refused in one line."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, run_python, run_without_zoo
from test_recipe import fails
from test_training_paths import exported_unmeasured, trained_alone

from zoo import recipe
from zoo.apps import pretrained
from zoo.blocks import schedules
from zoo.models.diffusion import Diffusion
from zoo.training import trainer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("distillation")]  # its module fixtures, built once (conftest.py)

TINY_NET = ["--channels", "8", "16", "--attention", "false", "true", "--guide-channels", "4", "8",
            "--sample-steps", "4", "--inpaint-resample", "1", "--inpaint-jump", "1", "--inpaint-label-steps", "2"]
QUICK = ["--steps-per-epoch", "2", "--eval-samples", "20", "--tflite-variants", "none", "--no-web", "--verbose", "0",
         "--mixed-precision", "off"]
STUDENTS = ["--preset", "distill", "--students", "2", "--teacher-steps", "4", "--epochs", "4"]  # 2 stages × 2 epochs


def test_each_halving_grid_is_every_other_point_of_the_one_before():
    schedule = schedules.Schedule("cosine", 1000)
    for n in (16, 8, 4, 2):
        grid = schedule.halving_timesteps(n)
        assert grid[0] == 999 and len(grid) == n and np.all(np.diff(grid) < 0) and grid[-1] == round(1000 / n) - 1
        np.testing.assert_array_equal(grid[::2], schedule.halving_timesteps(n // 2))


def test_the_two_step_target_lands_where_the_teachers_two_steps_land():
    """One DDIM step from x_t that predicts x̃ lands exactly on the teacher's x_{t''} (Salimans &
    Ho 2022, Algorithm 2), also when t'' is x_0 itself; checked in float64 NumPy."""
    schedule = schedules.Schedule("cosine", 1000)
    rng = np.random.default_rng(0)
    x_t = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
    t, t_mid = np.array([999, 499, 249], np.int32), np.array([749, 374, 124], np.int32)
    for t_next in (np.array([499, 249, 0], np.int32), np.array([-1, -1, -1], np.int32)):
        weights = rng.normal(size=(4, 4, 1)).astype(np.float32) * 0.1

        def denoise(x, at):  # any deterministic denoiser
            return tf.tanh(x * weights + tf.cast(at, tf.float32)[:, None, None, None] / 1000)

        target = schedules.two_step_target(schedule, denoise, tf.constant(x_t), tf.constant(t), tf.constant(t_mid),
                                           tf.constant(t_next)).numpy().astype(np.float64)
        x_mid = schedule.ddim_step(tf.constant(x_t), tf.constant(t), tf.constant(t_mid), denoise(x_t, t))
        landed = schedule.ddim_step(x_mid, tf.constant(t_mid), tf.constant(t_next), denoise(x_mid, t_mid)).numpy()
        ab = schedule.alpha_bar_np
        a, s = np.sqrt(ab[t])[:, None, None, None], np.sqrt(1 - ab[t])[:, None, None, None]
        a2 = np.where(t_next >= 0, np.sqrt(ab[np.maximum(t_next, 0)]), 1.0)[:, None, None, None]
        s2 = np.where(t_next >= 0, np.sqrt(1 - ab[np.maximum(t_next, 0)]), 0.0)[:, None, None, None]
        one_step = a2 * target + s2 * (x_t - a * target) / s  # DDIM with x̂_0 = x̃, its ε consistent with it
        np.testing.assert_allclose(one_step, landed, atol=2e-4)
        v = schedules.v_of_x0(schedule, tf.constant(x_t), tf.constant(t), tf.constant(target, tf.float32)).numpy()
        np.testing.assert_allclose(a * x_t - s * v, target, atol=1e-4)  # x_0 = α x_t − σ v


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A tiny teacher's export, unmeasured: distillation reads its card and SavedModel only (the
    students' run measures and converts the teacher again)."""
    root = tmp_path_factory.mktemp("teacher")
    exported_unmeasured(Diffusion, [*TINY_NET, *QUICK, "--epochs", "1", "--out", str(root), "--runs-dir",
                                    str(root / "runs")])
    return root / "diffusion"


def distil(teacher, root, *more):
    return recipe.main(Diffusion, [*STUDENTS, *TINY_NET, *QUICK, "--init-from", str(teacher), "--out", str(root),
                                   "--runs-dir", str(root / "runs"), *more])


@pytest.fixture(scope="module")
def distilled(teacher, tmp_path_factory):
    """`python recipes/distill.py ...` as a user runs it (a fresh process): its export."""
    root = tmp_path_factory.mktemp("distilled")
    out = run_python([os.path.join(REPO, "recipes", "distill.py"), *STUDENTS[2:], *TINY_NET, *QUICK,
                      "--init-from", str(teacher), "--out", str(root), "--runs-dir", str(root / "runs")])
    assert out.returncode == 0, out.stderr[-3000:]
    assert "=== diffusion: done in" in out.stdout and "student_2_steps_fid" in out.stdout
    return root / "diffusion"


def test_the_students_are_exported_beside_the_teacher_they_leave_untouched(teacher, distilled):
    card = pretrained.find(str(distilled)).card
    assert card["config"]["students"] == [2] and card["training"]["steps"] == 4  # stage 0's optimizer: 2 epochs of 2
    assert {"generate_2_steps", "sample_2_steps"} <= set(card["signatures"])
    assert card["signatures"]["generate_2_steps"]["tflite"] and "generate_2_steps" in card["tflite"][
        "diffusion.tflite"]["signatures"]
    for key in ("fid", "classifier_accuracy", "precision", "recall"):  # the teacher's evaluation, for each
        assert f"student_2_steps_{key}" in card["metrics"] and f"guided_ddim_4_steps_{key}" in card["metrics"]
    assert card["training"]["started_from"]["path"] == str(teacher)
    model, before = pretrained.keras_model(str(distilled)), pretrained.keras_model(str(teacher))
    for name in ("network_ema", "guide_network_ema"):  # distillation trains the students only
        for a, b in zip(getattr(model, name).weights, getattr(before, name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    # the 2-step student learnt (from the 4-step one, itself from the network's average); the
    # 4-step one only teaches: not stored
    assert not all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(model.student_2.weights,
                                                                       model.network_ema.weights))
    stored = {id(w) for _, w in model.stored_weights()}
    assert not stored & {id(w) for w in model.student_4.weights}
    assert {id(w) for w in model.student_2.weights} <= stored
    served = pretrained.load(str(distilled))
    np.testing.assert_allclose(served.sample(labels=[1, 7], seed=3, steps=2),
                               pretrained.Pretrained(served.folder, "keras").sample(labels=[1, 7], seed=3, steps=2),
                               atol=1e-5)


SERVE = """
import json, numpy as np, tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
m = tf.saved_model.load(SAVED)
noise = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype("float32")
labels = np.array([3, 8], "int32")
# As the README says to run it: every tensor kept (LiteRT 2.3's XNNPACK read stale memory in the
# loop on first calls of fresh interpreters: 7 of 80 wrong by 0.28). Fresh interpreters, their
# first calls, then a larger batch: where it went wrong. The teacher's samplers and the student's.
diff = {}
for name in ("generate", "generate_dpm_solver", "generate_2_steps"):
    gen = m.signatures[name](noise=tf.constant(noise), labels=tf.constant(labels))["images"].numpy()
    diff[name] = 0.0
    for _ in range(4):
        runner = Interpreter(model_path=LITE, experimental_preserve_all_tensors=True).get_signature_runner(name)
        for n in (2, 4):
            batch_noise = np.concatenate([noise, noise])[:n]
            batch_labels = np.concatenate([labels, labels])[:n]
            want = gen if n == 2 else np.concatenate([gen, gen])
            diff[name] = max(diff[name], float(np.abs(runner(noise=batch_noise, labels=batch_labels)["images"]
                                                      - want).max()))
eps = m.signatures["denoise"](noisy_images=tf.constant(noise), timesteps=tf.constant([0, 999]),
                              labels=tf.constant([3, 10]))["noise"]
s = m.signatures["sample"](labels=tf.constant(labels), seed=tf.constant(1))["images"]
inp = m.signatures["inpaint"](images=tf.zeros([2, 28, 28, 1]), mask=tf.ones([2, 28, 28, 1]),
                              noise=tf.constant(noise), labels=tf.constant([3, 10]))
errors = {}
for name, call in {
    "timesteps": lambda: m.signatures["denoise"](noisy_images=tf.constant(noise[:1]), timesteps=tf.constant([1000]),
                                                 labels=tf.constant([1])),
    "noise_shape": lambda: m.signatures["generate"](noise=tf.zeros([1, 28, 28, 3]), labels=tf.constant([1])),
    "labels": lambda: m.signatures["generate"](noise=tf.constant(noise[:1]), labels=tf.constant([10])),
}.items():
    try:
        call(); errors[name] = None
    except tf.errors.InvalidArgumentError as e:
        errors[name] = e.message
print("RESULT" + json.dumps({"diff": diff, "eps": list(eps.shape), "sample": list(s.shape),
    "inpaint_max": float(tf.reduce_max(inp["images"])), "inpaint_labels": inp["labels"].numpy().tolist(), "errors": errors, "signatures": sorted(m.signatures)}))
"""


def test_the_exported_samplers_run_in_litert_like_the_saved_model_where_zoo_cannot_be_imported(distilled):
    """The export users get (the teacher with its students): the teacher's DDIM and
    DPM-Solver++ and the 2-step student's generate in LiteRT equal the SavedModel's, and the SavedModel's signatures
    answer bad requests with an error naming the input."""
    card = pretrained.find(str(distilled)).card
    out = run_without_zoo(SERVE, SAVED=os.path.join(distilled, "serving", "1"),
                          LITE=os.path.join(distilled, "diffusion.tflite"))
    assert out["signatures"] == ["denoise", "generate", "generate_2_steps", "generate_dpm_solver", "inpaint", "sample",
                                 "sample_2_steps", "sample_dpm_solver", "serving_default"]
    assert max(out["diff"].values()) <= 1e-3, out["diff"]  # the model's tolerance
    assert out["eps"] == [2, 28, 28, 1] and out["sample"] == [2, 28, 28, 1]
    assert out["inpaint_max"] == 0.0  # everything known: the zeros come back
    assert out["inpaint_labels"][0] == 3 and 0 <= out["inpaint_labels"][1] <= 9  # given, and chosen
    assert "must be in [0, 999]" in out["errors"]["timesteps"]
    assert "must have shape [N, 28, 28, 1]" in out["errors"]["noise_shape"]
    assert "must be in [0, 9]" in out["errors"]["labels"]
    assert card["tflite"]["diffusion.tflite"]["bytes"] > 0


class StopAfterFirstStage(keras.callbacks.Callback):
    """What a Ctrl-C after the first stage's last epoch does (the loop stops at its next boundary)."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            trainer._ctrl_c.set()


@pytest.fixture(scope="module")
def interrupted(teacher, tmp_path_factory):
    """A distillation stopped between its stages (the runs folder it left)."""
    root = tmp_path_factory.mktemp("interrupted")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Diffusion, "training_callbacks", lambda self: [StopAfterFirstStage()])
        with pytest.raises(SystemExit) as stopped:
            distil(teacher, root)
    assert stopped.value.code == 130
    return root


def test_a_stage_resumed_with_other_flags_is_refused(teacher, interrupted, capsys):
    line = fails(capsys, [*STUDENTS, *TINY_NET, *QUICK, "--init-from", str(teacher), "--out", str(interrupted),
                          "--runs-dir", str(interrupted / "runs"), "--resume", "--learning-rate", "1e-3"], "diffusion")
    assert "trained with other settings (--learning-rate 0.0002 → 0.001)" in line


def test_a_distillation_stopped_between_stages_resumes_to_the_same_students(teacher, distilled, interrupted):
    """--resume: the second stage starts its student from the first's as the uninterrupted run
    (another process) did, and ends with the same weights."""
    resumed = trained_alone("diffusion", [*STUDENTS, *TINY_NET, *QUICK, "--init-from", str(teacher), "--out",
                                          str(interrupted), "--runs-dir", str(interrupted / "runs"), "--resume"])
    # stopped where evaluation would begin: the weights are what is compared
    for a, b in zip(resumed.student_2.weights, pretrained.keras_model(str(distilled)).student_2.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_bad_distillation_requests_are_refused_in_one_line(teacher, capsys, tmp_path):
    base = [*STUDENTS, *TINY_NET, *QUICK, "--out", str(tmp_path), "--runs-dir", str(tmp_path / "runs")]
    assert "--students must be powers of two" in fails(capsys, [*base, "--init-from", str(teacher), "--students", "3"],
                                                       "diffusion")
    assert "--students must take fewer steps than --teacher-steps 4" in fails(
        capsys, [*base, "--init-from", str(teacher), "--students", "4"], "diffusion")
    assert "--epochs must be at least the 2 distillation stages" in fails(
        capsys, [*base, "--init-from", str(teacher), "--epochs", "1"], "diffusion")
    assert "--init-from must be an export folder" in fails(capsys, [*base, "--init-from", str(tmp_path / "none")],
                                                           "diffusion")
    assert "holds a VAE, not a Diffusion" in fails(capsys, [*base, "--init-from", os.path.join(REPO, "exported", "vae")],
                                                   "diffusion")
