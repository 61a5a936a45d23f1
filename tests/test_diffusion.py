import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import ZooError
from zoo.blocks import schedules
from zoo.core import data
from zoo.export import saved_model
from zoo.models.capabilities import Inpainter
from zoo.models.diffusion import Diffusion, DiffusionConfig
from zoo.training.trainer import Trainer

TINY = dict(channels=(8, 16, 16), sample_steps=4, guidance=2.0, ema_decay=0.9, guide_channels=(4, 8, 8), guide_epochs=2)


# Schedules ------------------------------------------------------------------------------
def test_schedules_match_closed_forms():
    for kind in schedules.SCHEDULES:
        ab = schedules.alpha_bars(kind, 1000)
        assert np.all(np.diff(ab) < 0) and 0 < ab[-1] < ab[0] < 1
    cosine = schedules.alpha_bars("cosine", 1000)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
    expected = np.array([f(t + 1) / f(0) for t in range(1000)])
    unclipped = slice(0, 990)  # β is capped at 0.999 at the very end
    np.testing.assert_allclose(cosine[unclipped], expected[unclipped], rtol=1e-9)
    linear = schedules.alpha_bars("linear", 1000)
    np.testing.assert_allclose(linear, np.cumprod(1 - np.linspace(1e-4, 0.02, 1000)), rtol=1e-12)
    with pytest.raises(ZooError, match="unknown schedule 'sigmoid'"):
        schedules.alpha_bars("sigmoid")


def test_q_sample_statistics_and_v_round_trip():
    s = schedules.Schedule("cosine", 1000)
    t = tf.fill([20000], 300)
    x0 = tf.fill([20000, 1, 1, 1], 0.7)
    noise = tf.random.stateless_normal([20000, 1, 1, 1], seed=[1, 2])
    x_t = s.q_sample(x0, t, noise).numpy()
    ab = s.alpha_bar_np[300]
    assert x_t.mean() == pytest.approx(math.sqrt(ab) * 0.7, abs=0.01)
    assert x_t.var() == pytest.approx(1 - ab, rel=0.03)
    v = s.v_target(x0, t, noise)
    np.testing.assert_allclose(s.eps_from_v(x_t, t, v), noise, atol=1e-5)


def test_ddim_with_a_perfect_denoiser_recovers_x0():
    s = schedules.Schedule("cosine", 1000)
    x0 = tf.constant(np.random.default_rng(0).uniform(-1, 1, (3, 4, 4, 1)), tf.float32)

    def oracle(x_t, t):
        ab = s.gather(t)
        return (x_t - tf.sqrt(ab) * x0) / tf.sqrt(1 - ab)

    x_T = tf.random.stateless_normal(x0.shape, seed=[0, 1])
    for steps in (1, 5, 50):
        # float32: at t = T−1, √ᾱ ≈ 3e-5 amplifies rounding in x̂0 to ~1e-3; a wrong update is O(1).
        np.testing.assert_allclose(schedules.ddim_sample(s, oracle, x_T, steps), x0, atol=5e-3)
    with pytest.raises(ZooError, match=r"sampling steps must be in 1..1000, got 0"):
        s.ddim_timesteps(0)


def test_min_snr_weights_match_the_closed_form():
    t = np.array([0, 100, 400, 700, 999], np.int32)
    ab = schedules.alpha_bars("cosine", 1000)[t]
    snr = ab / (1 - ab)
    for prediction, expected in (("eps", np.minimum(snr, 5) / snr), ("v", np.minimum(snr, 5) / (snr + 1))):
        model = Diffusion(DiffusionConfig(**TINY, prediction=prediction, min_snr_gamma=5.0))
        np.testing.assert_allclose(model.loss_weight(tf.constant(t)), expected, rtol=1e-4)
    assert expected[0] < 0.01 and expected[-1] == pytest.approx(snr[-1] / (snr[-1] + 1))  # clean steps down-weighted
    plain = Diffusion(DiffusionConfig(**TINY, min_snr_gamma=0.0))
    np.testing.assert_array_equal(plain.loss_weight(tf.constant(t)), np.ones(5))


pytestmark = pytest.mark.xdist_group("diffusion")  # its module fixture, built once (conftest.py)


# Model ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = Diffusion(DiffusionConfig(**TINY))
    model.configure_optimizers(5e-3)
    x, y = data.mnist5k("train")
    idx = np.random.default_rng(0).permutation(len(y))[:32]
    ds = tf.data.Dataset.from_tensor_slices((x[idx], y[idx])).repeat().batch(32, drop_remainder=True)
    history = Trainer(model, tf.distribute.get_strategy()).fit(ds, epochs=3, steps_per_epoch=10, verbose=0)
    return model, history


@pytest.mark.slow
def test_training_reduces_the_loss(trained):
    _, history = trained
    loss = history.history["loss"]
    assert loss[-1] < 0.7 * loss[0], loss


@pytest.mark.slow
def test_eps_prediction_trains_too():
    keras.utils.set_random_seed(1)
    model = Diffusion(DiffusionConfig(**TINY, prediction="eps"))
    model.configure_optimizers(2e-3)
    x, y = data.mnist5k("train")
    ds = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).repeat().batch(32, drop_remainder=True)
    loss = Trainer(model, tf.distribute.get_strategy()).fit(ds, epochs=3, steps_per_epoch=10, verbose=0).history["loss"]
    assert loss[-1] < 0.7 * loss[0], loss


@pytest.mark.slow
def test_in_graph_sampler_equals_a_step_by_step_python_loop(trained):
    model, _ = trained
    labels = tf.constant([1, 7])
    noise = model.initial_noise(2, 3)
    in_graph = tf.function(lambda: model.generate(noise, labels))().numpy()
    np.testing.assert_array_equal(in_graph, tf.function(lambda: model.generate(noise, labels))().numpy())
    s, denoise = model.schedule, model.guided_denoiser(labels)
    times = s.ddim_timesteps(model.config.sample_steps)
    # The reference: one Python iteration (one graph call) per step. The first step divides
    # by √ᾱ_{T−1} ≈ 5e-5, which turns float32 rounding differences between two compiled
    # graphs into ~1e-3 on a few pixels; a wrong update would differ by O(1).
    step = tf.function(lambda x, t, t_prev: s.ddim_step(x, t, t_prev, denoise(x, t)))
    x = noise
    for i, t in enumerate(times):
        t_prev = times[i + 1] if i + 1 < len(times) else -1
        x = step(x, tf.fill([2], t), tf.fill([2], t_prev))
    reference = model.to_images(x).numpy()
    np.testing.assert_allclose(in_graph, reference, atol=3e-3)
    assert np.mean(np.abs(in_graph - reference)) < 1e-4
    other = tf.function(lambda: model.generate(model.initial_noise(2, 4), labels))().numpy()
    assert not np.allclose(in_graph, other)


@pytest.mark.slow
def test_guidance_zero_ignores_the_label(trained):
    model, _ = trained
    noise = model.initial_noise(1, 0)
    a = model.generate(noise, tf.constant([3]), guidance=0.0).numpy()
    b = model.generate(noise, tf.constant([7]), guidance=0.0).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(model.generate(noise, tf.constant([3]), guidance=3.0).numpy(),
                           model.generate(noise, tf.constant([7]), guidance=3.0).numpy())


@pytest.mark.slow
def test_autoguidance_is_the_guide_plus_g_times_the_difference_and_classifier_free_without_a_guide(trained):
    model, _ = trained
    x = model.initial_noise(3, 5)
    t, labels = tf.fill([3], 600), tf.constant([1, 4, 10])  # 10: the null class, guided the same way
    g = model.config.guidance

    def eps(network, y):  # ε from the networks' v by hand, not through model.eps
        ab = model.schedule.alpha_bar_np[600]
        v = network([x, t, y]).numpy()
        return math.sqrt(ab) * v + math.sqrt(1 - ab) * x.numpy()

    guide, net = eps(model.guide_network_ema, labels), eps(model.network_ema, labels)
    np.testing.assert_allclose(model.guided_denoiser(labels)(x, t), guide + g * (net - guide), atol=1e-4)
    assert not np.allclose(guide, net, atol=1e-2)  # the guide is another network
    classifier_free = Diffusion(DiffusionConfig(**{**TINY, "guide_channels": ()}))
    classifier_free.network_ema.set_weights(model.network_ema.get_weights())
    assert classifier_free.guide_network is None
    null = eps(model.network_ema, tf.fill([3], 10))
    np.testing.assert_allclose(classifier_free.guided_denoiser(labels)(x, t), null + g * (net - null), atol=1e-4)


@pytest.mark.slow
def test_the_guide_trains_in_its_first_epochs_only_and_leaves_the_networks_training_as_it_was():
    x, y = data.mnist5k("train")
    ds = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).repeat().batch(16, drop_remainder=True)

    after_epoch = []

    class GuideWeights(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            after_epoch.append(self.model.guide_network.get_weights())

    def train(guide_channels, guide_epochs, epochs):
        keras.utils.set_random_seed(2)
        model = Diffusion(DiffusionConfig(**{**TINY, "guide_channels": guide_channels, "guide_epochs": guide_epochs}))
        model.configure_optimizers(3e-3)
        history = Trainer(model, tf.distribute.get_strategy(), steps_per_execution=2).fit(
            ds, epochs=epochs, steps_per_epoch=4, verbose=0, callbacks=[GuideWeights()] if guide_channels else [])
        return model, history.history

    guided, history = train((4, 8, 8), 1, 2)
    fresh_guide = Diffusion(DiffusionConfig(**TINY)).guide_network.get_weights()[0]
    assert len(after_epoch) == 2 and not np.allclose(after_epoch[0][0], fresh_guide)  # epoch 1 trained it
    for a, b in zip(*after_epoch):
        np.testing.assert_array_equal(a, b)  # epoch 2 left the guide as epoch 1 left it
    assert len(history["guide_loss"]) == 1 and len(history["loss"]) == 2
    alone, _ = train((), 1, 2)  # the same seed without a guide: the network's own draws are unchanged
    for a, b in zip(guided.network.get_weights(), alone.network.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(guided.guide_network.get_weights()[0], fresh_guide)


@pytest.mark.slow
def test_inpainting_keeps_known_pixels_and_ddpm_runs(trained):
    model, _ = trained
    x, _ = data.mnist5k("test")
    images = tf.constant(x[:2])
    mask = np.ones((2, 28, 28, 1), np.float32)
    mask[:, 14:] = 0
    out = model.inpainter().images(images, tf.constant(mask), model.initial_noise(2, 0), tf.constant([10, 10]))[0].numpy()
    np.testing.assert_allclose(out[:, :14], x[:2, :14], atol=1e-6)
    assert not np.allclose(out[:, 14:], x[:2, 14:])
    short = Diffusion(DiffusionConfig(**{**TINY, "sample_steps": 2}, timesteps=20))
    ddpm = tf.function(short.sample_ddpm)(tf.constant([1, 2]), tf.constant(0)).numpy()
    assert ddpm.shape == (2, 28, 28, 1) and 0 <= ddpm.min() and ddpm.max() <= 1
    one = tf.function(short.sample_ddpm)(tf.constant([3]), tf.constant(0)).numpy()  # a batch of 1 broadcasts
    assert one.shape == (1, 28, 28, 1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sample_steps=0), "sample_steps must be a positive integer, got 0"),
    (dict(sample_steps=2000), "sample_steps must be at most the 1000 timesteps, got 2000"),
    (dict(prediction="x0"), "prediction must be one of v, eps, got 'x0'"),
    (dict(min_snr_gamma=-1.0), "min_snr_gamma must be a number >= 0, got -1.0"),
    (dict(guidance=-1.0), "guidance must be a number >= 0, got -1.0"),
    (dict(ema_decay=1.5), r"ema_decay must be in \[0, 1\), got 1.5"),
    (dict(attention=(True,)), "one flag per level"),
    (dict(guide_channels=(8, 16)), r"guide_channels needs one width per level of channels \(32, 64, 64\)"),
    (dict(guide_epochs=0), "guide_epochs must be a positive integer, got 0"),
    (dict(inpaint_label_steps=-1), "inpaint_label_steps must be an integer >= 0, got -1"),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(ZooError, match=message):
        DiffusionConfig(**kwargs)


@pytest.mark.slow
def test_the_signatures_share_one_trace_of_each_network(tmp_path):
    """Four signatures call the averaged U-Net nine times and the guide four: one signature
    traces each once (the saver reuses the endpoint's trace instead of tracing it again in its
    save context), and writing all four traces no network again — each is stored once, not
    once per call site."""
    model = Diffusion(DiffusionConfig(**TINY))
    signatures = {s.name: s for s in model.signatures() if s.saved_model}
    networks = (model.network_ema, model.guide_network_ema)

    def traces():
        return [model.network_call(n).experimental_get_tracing_count() for n in networks]

    saved_model.write_saved_model_of([signatures["generate"]], str(tmp_path / "one"), saved_model.checked)
    after_one = traces()
    assert after_one == [1, 1], after_one
    saved_model.write_saved_model_of(list(signatures.values()), str(tmp_path / "all"), saved_model.checked)
    assert traces() == after_one


@pytest.mark.slow
def test_pictures_and_preview(trained):
    from zoo.evaluation import image_tasks, pictures

    model, _ = trained
    x, y = data.mnist5k("test")
    splits = data.Splits((x[:50], y[:50]), (x[:50], y[:50]))
    grids = pictures.export_pictures(model, splits)
    assert set(grids) == {"samples.png", "denoising_steps.png"}
    assert grids["denoising_steps.png"].shape[:2] == (32, 2 + (1 + model.config.sample_steps) * 30)
    assert grids["samples.png"].shape[:2] == (2 + 10 * 30, 2 + 8 * 30)
    # inpainting.png comes with the measurement, drawn from the very fills it scored
    measured = image_tasks.inpainting_metrics(model, splits, digits=4, masks=("lower_half",))
    p = measured.metrics["inpainting_accuracy_lower_half"]
    assert measured.metrics["inpainting_accuracy_lower_half_se"] == pytest.approx(np.sqrt(p * (1 - p) / 4))
    assert measured.info["inpainting"] == {"digits": 4, "seed": 0, "masks": ["lower_half"]}
    assert measured.pictures["inpainting.png"].shape[:2] == (2 + 3 * 30, 2 + 4 * 30)  # input, fill, original


def test_the_diffusion_classifier_picks_the_label_that_explains_the_kept_pixels():
    """schedules.classify_by_denoising: the class whose noise prediction is exact on the kept
    pixels wins, whatever the predictions say about the hidden ones."""
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(6, 8, 8, 1)).astype(np.float32)
    truth = np.array([0, 1, 2, 0, 1, 2], np.int32)
    mask = np.zeros_like(images)
    mask[:, :4] = 1  # the upper half is kept
    schedule = schedules.Schedule("cosine", 100)
    # every class of an image comes in one batch: rows image-major, classes 0, 1, 2
    x0_rows = tf.repeat(tf.constant(images), 3, axis=0)
    truth_rows = tf.repeat(tf.constant(truth), 3)

    def judged_on(kept):
        def denoise(x_t, t, labels):
            ab = schedule.gather(t)
            exact = (x_t - tf.sqrt(ab) * x0_rows) / tf.sqrt(1.0 - ab)
            right = tf.cast(tf.equal(labels, truth_rows), tf.float32)[:, None, None, None]
            # the true class: exact on the upper half, off on the lower; the others: the reverse
            upper = tf.constant(mask[:1])
            return exact + 0.3 * (right * (1 - upper) + (1 - right) * upper)

        noise = rng.normal(size=(4, 8, 8, 1)).astype(np.float32)
        return tf.function(lambda: schedules.classify_by_denoising(
            schedule, denoise, tf.constant(images), tf.constant(kept), 3,
            schedules.classifier_timesteps(4, 100), noise))().numpy()

    np.testing.assert_array_equal(judged_on(mask), truth)
    assert not np.any(judged_on(1 - mask) == truth)  # judged on the other half
    np.testing.assert_array_equal(schedules.classifier_timesteps(3, 1000), [50, 500, 950])


@pytest.mark.slow
def test_a_label_free_inpainting_chooses_its_label_and_a_given_label_is_kept(trained):
    """The two passes: the null class gets the label the model chooses (what choose_labels
    says of the first, unconditional fill), a given label stays; with inpaint_label_steps 0 the
    null class stays and the fill is the plain unconditional one."""
    model, _ = trained
    x, y = data.mnist5k("test")
    images = tf.constant(x[[0, 150, 300]])
    mask = np.ones((3, 28, 28, 1), np.float32)
    mask[:, 14:] = 0
    noise = model.initial_noise(3, 5)
    out, labels = model.inpainter().images(images, tf.constant(mask), noise, tf.constant([10, 4, 10]))
    labels = labels.numpy()
    assert labels[1] == 4 and 0 <= labels[0] < 10 and 0 <= labels[2] < 10
    np.testing.assert_allclose(out.numpy()[:, :14], x[[0, 150, 300], :14], atol=1e-6)
    c = model.config
    x0 = images * 2.0 - 1.0
    first = schedules.repaint_sample(model.schedule, model.guided_denoiser(None), noise, c.sample_steps,
                                     (x0, mask), c.inpaint_resample, c.inpaint_jump, c.inpaint_eta, tf.constant([0, 3]))
    chosen = model.inpainter().choose_labels(mask * x0 + (1 - mask) * first, tf.constant(mask)).numpy()
    np.testing.assert_array_equal(labels[[0, 2]], chosen[[0, 2]])
    plain = Diffusion(DiffusionConfig(**{**c.to_dict(), "inpaint_label_steps": 0}))
    plain.set_weights(model.get_weights())
    _, kept = plain.inpainter().images(images, tf.constant(mask), noise, tf.constant([10, 4, 10]))
    np.testing.assert_array_equal(kept.numpy(), [10, 4, 10])


@pytest.mark.slow
def test_the_cards_two_fills_share_work_and_equal_two_separate_fills(trained):
    """inpaint_with_and_without_label_numpy reuses the labelled fill wherever the label-free pass
    chooses the true label, and refills only the others: both results equal what two
    separate inpaint_numpy calls give, whichever label the model chose."""
    model, _ = trained
    x, _ = data.mnist5k("test")
    images = x[:6]
    mask = np.ones((6, 28, 28, 1), np.float32)
    mask[:, 14:] = 0
    (_, _, m, noise, path), = model.inpainter().batches(images, mask, 4, 250)  # the noise both calls use
    chosen = model.inpainter().labels_to_fill_with(tf.constant(images * 2 - 1), tf.constant(m), tf.constant(noise), None,
                                       path_noise=tf.constant(path)).numpy()
    # the true labels of half the images equal what the model would choose, of the other half not
    labels = np.where(np.arange(6) < 3, chosen, (chosen + 1) % 10).astype(np.int32)
    shared = model.inpaint_with_and_without_label_numpy(images, mask, labels, seed=4)
    separate = Inpainter.inpaint_with_and_without_label_numpy(model, images, mask, labels, seed=4)
    for a, b in zip(shared, separate):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # measured equal to the last bit here; a wrong label would show: even this 30-step
    # network's fills of those images differ by 7e-4 to 1.3e-3 between the two labels
    assert np.abs(shared[0] - shared[1])[3:].max(axis=(1, 2, 3)).min() > 10 * 1e-5


@pytest.mark.slow
def test_the_evaluations_fills_are_the_exported_inpaints(trained):
    """Evaluation fills in two graphs (the label choice, then RePaint under the labels) what the
    ``inpaint`` signature's one graph fills: the same images and, for label-free images, the
    label it chose — with the same noise, to float rounding."""
    model, _ = trained
    x, _ = data.mnist5k("test")
    images = x[10:14]
    mask = np.ones((4, 28, 28, 1), np.float32)
    mask[:, :, :14] = 0
    (_, _, m, noise, path), = model.inpainter().batches(images, mask, 2, 250)
    labels = np.array([10, 3, 10, 7], np.int32)  # 10: the null class, "no label"
    exported, used = tf.function(lambda: model.inpainter().images(tf.constant(images), tf.constant(m), tf.constant(noise),
                                                       tf.constant(labels), path_noise=tf.constant(path)))()
    np.testing.assert_allclose(model.inpaint_numpy(images, mask, labels, seed=2), exported.numpy(), atol=1e-5)
    assert list(used.numpy()[[1, 3]]) == [3, 7] and all(used.numpy()[[0, 2]] < 10)
    np.testing.assert_allclose(model.inpaint_numpy(images, mask, used.numpy(), seed=2), exported.numpy(), atol=1e-5)
