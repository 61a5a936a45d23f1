"""Inpainting with the diffusion model (JSON): for each mask (lower half, centre square, random
strokes), on the test digits, fills without and with the label — the zoo classifier's accuracy
against the original digit and the PSNR of the filled pixels — beside the classifier on the
masked input itself, for RePaint settings (resamplings r, jump length j), plus the same
evaluation of an untrained network (what the masked input alone gets you through the sampler).

    python bench/inpainting.py [--run runs/diffusion/<stamp>] [--digits 1000] [--settings 1,1 3,2 5,2]
    python bench/inpainting.py --choose-label [--digits 200]

It restores the run's last checkpoint (the averaged weights the recipe exported).
``--choose-label`` measures instead a label-free fill in two passes: the diffusion model picks
the label (a diffusion classifier, Li et al. 2023: the class whose conditional noise prediction
best explains the kept pixels), then fills with it — against the plain unconditional fill.
"""

import argparse
import dataclasses
import time

import numpy as np
import tensorflow as tf
from common import report, restore_run

from zoo import corruption, data, evaluation, progress


def diffusion_label(model, images, mask, filled, seed, steps=10, batch=100):
    """For each image, the class c minimising Σ_t ‖m ⊙ (ε̂(x_t, t, c) − ε)‖² over ``steps``
    timesteps spread over (0, T), with the same ε for every class; x_t is diffused from the kept
    pixels completed by ``filled`` (an unconditional fill), and only kept pixels (m = 1) count."""
    c = model.config
    timesteps = (np.linspace(0.05, 0.95, steps) * c.timesteps).astype(np.int32)
    denoise = model.graph(("denoise",), model.denoise)
    x0 = (np.where(mask > 0, images, filled) * 2.0 - 1.0).astype(np.float32)
    errors = np.zeros((len(images), c.num_classes))
    for i in range(0, len(images), batch):
        x = x0[i:i + batch]
        n = len(x)
        # every class in one call: each image's rows repeated once per class, labels 0…C−1
        kept = tf.repeat(tf.constant(mask[i:i + batch], tf.float32), c.num_classes, axis=0)
        labels = tf.constant(np.tile(np.arange(c.num_classes, dtype=np.int32), n))
        for k, t in enumerate(timesteps):
            noise = tf.repeat(tf.random.stateless_normal(x.shape, seed=[seed + i, 100 + k]), c.num_classes, axis=0)
            t_all = tf.fill([n * c.num_classes], t)
            x_t = model.schedule.q_sample(tf.repeat(tf.constant(x), c.num_classes, axis=0), t_all, noise)
            err = tf.reduce_sum(kept * (denoise(x_t, t_all, labels) - noise) ** 2, axis=[1, 2, 3])
            errors[i:i + n] += tf.reshape(err, [n, c.num_classes]).numpy()
    return errors.argmin(1).astype(np.int32)


def choose_label(model, splits, digits, seed, kinds=("lower_half", "centre_square"), steps=10):
    test_x, test_y = splits.test
    index = evaluation.stratified(test_y, min(digits, len(test_y)), seed)
    images, labels = test_x[index], test_y[index]
    classifier = evaluation.digit_classifier(splits)
    results = {}
    for kind in kinds:
        mask = corruption.inpainting_mask(kind, len(images), images.shape[1:], seed)
        began = time.perf_counter()
        free = model.inpaint_images(images, mask, None, seed)
        filled_once = time.perf_counter()
        chosen = diffusion_label(model, images, mask, free, seed, steps)
        chose = time.perf_counter()
        filled = model.inpaint_images(images, mask, chosen, seed)
        results[kind] = {
            "accuracy_unconditional_fill": float(np.mean(classifier.probabilities(free).argmax(1) == labels)),
            "label_choice_accuracy": float(np.mean(chosen == labels)),
            "accuracy_fill_with_chosen_label": float(np.mean(classifier.probabilities(filled).argmax(1) == labels)),
            "accuracy_masked_input": float(np.mean(classifier.probabilities(images * mask).argmax(1) == labels)),
            "seconds": {"unconditional_fill": round(filled_once - began, 1), "choosing": round(chose - filled_once, 1),
                        "total": round(time.perf_counter() - began, 1)}}
        print(kind, results[kind], flush=True)
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a run folder of recipes/diffusion.py (default: the newest under runs/diffusion)")
    p.add_argument("--digits", type=int, default=1000)
    p.add_argument("--settings", nargs="+", default=["1,1", "3,2", "5,2"], help="r,j pairs")
    p.add_argument("--eta", type=float, nargs="+", default=[1.0])
    p.add_argument("--untrained", action="store_true", help="also an untrained network with the first setting")
    p.add_argument("--choose-label", action="store_true",
                   help="measure the two-pass label-free fill (diffusion classifier, then a labelled fill) instead")
    p.add_argument("--classifier-steps", type=int, default=10, help="timesteps the diffusion classifier averages")
    p.add_argument("--masks", nargs="+", default=["lower_half", "centre_square"], choices=corruption.MASKS)
    args = p.parse_args()
    progress.set_verbosity(0)
    model, epoch, settings, run = restore_run(args.run)
    splits = evaluation.Splits(data.arrays(settings["data"], "test", settings["data_dir"]),
                               data.arrays(settings["data"], "train", settings["data_dir"]), settings["data"])
    if args.choose_label:
        report("inpainting_choose_label", {"run": run, "epoch": epoch, "digits": args.digits,
                                           "classifier_steps": args.classifier_steps,
                                           "by_mask": choose_label(model, splits, args.digits, settings["seed"],
                                                                   args.masks, args.classifier_steps)})
        return
    results = {"run": run, "epoch": epoch, "digits": args.digits, "sample_steps": model.config.sample_steps,
               "guidance": model.config.guidance, "by_setting": {}}
    base = model.config
    for setting in args.settings:
        r, j = (int(v) for v in setting.split(","))
        for eta in args.eta:
            model.config = dataclasses.replace(base, inpaint_resample=r, inpaint_jump=j, inpaint_eta=eta)
            start = time.perf_counter()
            measured, reference = evaluation.inpainting_metrics(model, splits, args.digits, seed=settings["seed"])
            results["by_setting"][f"r={r},j={j},eta={eta}"] = {**measured, "moves": model.inpaint_moves(),
                                                               "seconds": round(time.perf_counter() - start, 1)}
            results["masked_input_reference"] = reference
            print(f"r={r} j={j} eta={eta}", {k: round(v, 3) for k, v in measured.items()}, flush=True)
    if args.untrained:
        from zoo.models.diffusion import Diffusion

        fresh = Diffusion(dataclasses.replace(base, inpaint_resample=int(args.settings[0].split(",")[0]),
                                              inpaint_jump=int(args.settings[0].split(",")[1])))
        results["untrained_network"] = evaluation.inpainting_metrics(fresh, splits, args.digits,
                                                                     seed=settings["seed"])[0]
    report("inpainting", results)


if __name__ == "__main__":
    main()
