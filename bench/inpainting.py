"""Inpainting with the diffusion model (JSON): for each mask (lower half, centre square, random
strokes), on the test digits, fills without and with the label — the zoo classifier's accuracy
against the original digit and the PSNR of the filled pixels — beside the classifier on the
masked input itself, for RePaint settings (resamplings r, jump length j, η) and label-choice
timesteps (``--label-steps``: how many noise levels the model compares the classes at before a
label-free fill; 0 = the plain unconditional fill), plus the same evaluation of an untrained
network (what the masked input alone gets you through the sampler).

    python bench/inpainting.py [--run runs/diffusion/<stamp>] [--digits 1000] [--settings 1,1 3,2 5,2]
                               [--label-steps 0 10 25] [--masks lower_half]

It restores the run's last checkpoint (the averaged weights the recipe exported).
"""

import argparse
import dataclasses
import time

from common import report, restore_run

from zoo.blocks import corruption
from zoo.core import data, progress
from zoo.evaluation import image_tasks


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a run folder of recipes/diffusion.py (default: the newest under runs/diffusion)")
    p.add_argument("--digits", type=int, default=1000)
    p.add_argument("--settings", nargs="+", default=["1,1", "3,2", "5,2"], help="r,j pairs")
    p.add_argument("--eta", type=float, nargs="+", default=[1.0])
    p.add_argument("--label-steps", type=int, nargs="+", default=[None],
                   help="timesteps of the label choice before a label-free fill (default: the model's; 0: none)")
    p.add_argument("--untrained", action="store_true", help="also an untrained network with the first setting")
    p.add_argument("--masks", nargs="+", default=list(corruption.MASKS), choices=corruption.MASKS)
    args = p.parse_args()
    progress.set_verbosity(0)
    model, epoch, settings, run = restore_run(args.run)
    splits = data.splits(settings["data"], settings["data_dir"])
    results = {"run": run, "epoch": epoch, "digits": args.digits, "sample_steps": model.config.sample_steps,
               "guidance": model.config.guidance, "by_setting": {}}
    base = model.config
    for setting in args.settings:
        r, j = (int(v) for v in setting.split(","))
        for eta in args.eta:
            for label_steps in args.label_steps:
                k = base.inpaint_label_steps if label_steps is None else label_steps
                model.config = dataclasses.replace(base, inpaint_resample=r, inpaint_jump=j, inpaint_eta=eta,
                                                   inpaint_label_steps=k)
                start = time.perf_counter()
                measured, reference = image_tasks.inpainting_metrics(model, splits, args.digits, seed=settings["seed"],
                                                                    masks=args.masks)
                name = f"r={r},j={j},eta={eta},label_steps={k}"
                results["by_setting"][name] = {**measured, "moves": model.inpainter().moves(),
                                               "seconds": round(time.perf_counter() - start, 1)}
                results["masked_input_reference"] = reference
                print(name, {k: round(v, 3) for k, v in measured.items()}, flush=True)
    if args.untrained:
        from zoo.models.diffusion import Diffusion

        fresh = Diffusion(dataclasses.replace(base, inpaint_resample=int(args.settings[0].split(",")[0]),
                                              inpaint_jump=int(args.settings[0].split(",")[1])))
        results["untrained_network"] = image_tasks.inpainting_metrics(fresh, splits, args.digits,
                                                                     seed=settings["seed"], masks=args.masks)[0]
    report("inpainting", results)


if __name__ == "__main__":
    main()
