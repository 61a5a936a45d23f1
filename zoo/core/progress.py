"""Progress of the long stages after training (sampling, feature passes, CAS training,
inpainting, TFLite conversion and parity), in the Keras progress-bar style training uses:
a title line, then ``12/50 [=====>....] - ETA: 3s``. A stage of one piece shows its title
only; where the output is no terminal (a log file, CI), bars become one line per epoch or
stage, without the bars' colour codes."""

from __future__ import annotations

import contextlib
import sys
import time

import keras

VERBOSE = {"level": 1}  # the recipe sets it from --verbose; 0 silences every stage
_RECORDS = []  # the lists ``recorded`` blocks are filling


def set_verbosity(level):
    """Set ``--verbose`` and return what it means here: 1 (bars) becomes 2 (a line per epoch)
    when stdout is no terminal, where Keras' bars would write their ANSI colour codes."""
    VERBOSE["level"] = 2 if level == 1 and not sys.stdout.isatty() else level
    return VERBOSE["level"]


def say(line):
    """A line for the person watching (none at --verbose 0)."""
    if VERBOSE["level"]:
        print(line, flush=True)


class Stage:
    """``total`` units of work; ``advance(n)`` after each piece."""

    def __init__(self, title, total, unit="step"):
        self.total, self.done, self.started = max(int(total), 1), 0, time.perf_counter()
        self.title, self.seconds, self.bar = title, None, None
        if VERBOSE["level"]:
            print(f"zoo: {title}", flush=True)
        if VERBOSE["level"] and self.total > 1:
            self.bar = keras.utils.Progbar(self.total, unit_name=unit, verbose=1 if VERBOSE["level"] == 1 else 2)

    def advance(self, n=1):
        self.done = min(self.total, self.done + n)
        if self.bar is not None:
            self.bar.update(self.done)

    def finish(self):
        if self.done < self.total:
            self.advance(self.total - self.done)
        if self.seconds is None:
            self.seconds = time.perf_counter() - self.started
            for times in _RECORDS:
                times.append([self.title, round(self.seconds, 1)])
        return self.seconds


@contextlib.contextmanager
def recorded():
    """[title, seconds] of every stage finished inside the block, in order of finishing (a
    stage inside another comes first): where a run's time went."""
    times = []
    _RECORDS.append(times)
    try:
        yield times
    finally:
        _RECORDS.remove(times)


@contextlib.contextmanager
def stage(title, total=1, unit="step"):
    """A ``Stage`` that is completed when the block ends."""
    s = Stage(title, total, unit)
    yield s
    s.finish()
