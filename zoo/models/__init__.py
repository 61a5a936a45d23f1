"""One file per model: its config dataclass and its keras.Model subclass."""
