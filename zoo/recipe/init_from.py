"""``--init-from``: a run that starts from the weights of an export folder or a .keras file."""

from __future__ import annotations

import os

import keras

from zoo.apps import pretrained
from zoo.core.config import ConfigError
from zoo.core.errors import ZooError
from zoo.export.folder import ExportFolder
from zoo.models.base import import_every_model


def load_weights(model, path):
    """``--init-from``: the weights of an export folder (or a .keras file) whose model has the
    same architecture — or, for a model with parts the export lacks (a diffusion model with
    students), the networks both have. Returns what the card records of where it started."""
    if not os.path.isdir(path) and not path.endswith(".keras") and path in pretrained.shipped_models():
        path = pretrained.find(path).folder  # a shipped model's name
    if not (os.path.isdir(path) or (path.endswith(".keras") and os.path.isfile(path))):
        raise ConfigError("--init-from", path, "must be an export folder (runs/<model>/<time>/<model>, exported/<model>), "
                          f"a shipped model's name ({', '.join(pretrained.shipped_models()) or 'none here'}) or a "
                          ".keras file")
    import_every_model()  # a .keras file names its class by what registered it
    try:
        source = (pretrained.keras_model(path) if os.path.isdir(path)
                  else keras.saving.load_model(path, compile=False))
    except ZooError as e:
        raise ConfigError("--init-from", path, f"must be an export zoo can read ({e})") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise ConfigError("--init-from", path, f"must be an export folder or .keras file zoo can read "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if type(source) is not type(model):
        raise ConfigError("--init-from", path, f"holds a {type(source).__name__}, not a {type(model).__name__}")
    shapes = [tuple(getattr(m.config, "image_shape", ())) for m in (source, model)]
    if shapes[0] != shapes[1]:
        said = ["×".join(map(str, s)) for s in shapes]
        raise ConfigError("--init-from", path, f"holds a model of {said[0]} images and this run's data is {said[1]}: a "
                          "model cannot change its image size (resize with --image-size H W and --color-mode, or "
                          "train from scratch)", say_value=False)
    mine, theirs = model.get_weights(), source.get_weights()
    if [w.shape for w in mine] == [w.shape for w in theirs]:
        model.set_weights(theirs)
    else:
        shared = model.shared_networks(source)
        if not shared:
            raise ConfigError("--init-from", path, f"holds a {type(source).__name__} with config "
                              f"{source.config.to_dict()}: a different architecture from these flags'; pass the same "
                              "architecture flags")
        for network in shared:
            getattr(model, network).set_weights(getattr(source, network).get_weights())
    print(f"zoo: starting from the weights of {path}")
    if not os.path.isdir(path):
        return {"path": path}
    before = ExportFolder(path).card
    return {"path": path, "model": before["model"], "version": before["version"],
            "training_seconds": before["training"]["seconds"], "commit": before.get("provenance", {}).get("commit")}
