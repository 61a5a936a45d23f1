"""The Keras callbacks every training run gets: TensorBoard, a history CSV that a resumed run
appends to, preview pictures, and an early word on the time left."""

from __future__ import annotations

import os
import time

import keras

from zoo.core import images, progress
from zoo.training.trainer import due


class PreviewCallback(keras.callbacks.Callback):
    """Saves ``draw()`` as samples/epoch_NNN.png after every ``every`` epochs and the last one."""

    def __init__(self, directory, draw, every=1):
        super().__init__()
        self.directory, self.draw, self.every = directory, draw, every
        os.makedirs(directory, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        if not due(epoch, self.every, self.params.get("epochs")):
            return
        picture = self.draw()
        if picture is not None:
            images.save_png(picture, os.path.join(self.directory, f"epoch_{epoch + 1:03d}.png"))


class HistoryCSV(keras.callbacks.CSVLogger):
    """Keras' CSVLogger, except that a resumed run appends under the columns the file already
    has: Keras takes them from the first epoch of each part, and a part that starts after a
    phase (the diffusion guide's loss is logged in the first epochs only) would shift its
    values into the wrong columns. A value an epoch lacks is written as NA."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.append and not self.append_header:
            with open(self.filename) as f:
                header = f.readline().strip().split(self.sep)
            self.keys = header[1:]  # after "epoch"


class TimeLeft(keras.callbacks.Callback):
    """Early in a run, the training time left at its pace: a run that will take an hour (a CPU
    without bfloat16 instructions trains the diffusion model in float32) says so at once. Told
    after the second epoch a process trains (the first also traces the step: the default
    diffusion run's first epoch took twice its second)."""

    def on_train_begin(self, logs=None):
        self.trained = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.trained += 1
        left = self.params.get("epochs", 0) - epoch - 1
        if self.trained == 2 and left > 0:
            seconds = time.perf_counter() - self.started
            progress.say(f"\nzoo: {seconds:.0f} s per epoch: about {left * seconds / 60:.0f} min of training left "
                         f"({left} epochs), then evaluation and export")


def standard_callbacks(run_dir, chief, preview, every):
    callbacks = [keras.callbacks.TerminateOnNaN(), TimeLeft()]
    if chief:
        callbacks += [
            keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), update_freq="epoch"),
            HistoryCSV(os.path.join(run_dir, "history.csv"), append=True),
            PreviewCallback(os.path.join(run_dir, "samples"), preview, every),
        ]
    return callbacks
