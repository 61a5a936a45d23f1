"""One file per model: its config dataclass and its keras.Model subclass."""

# Every model's module: importing one registers its class with Keras and with
# ``base.model_class`` (the names an export's card uses).
MODULES = ("autoencoder", "cgan", "classifier", "diffusion", "vae")
