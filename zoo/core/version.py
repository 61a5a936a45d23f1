"""The package's version (setup.cfg reads it from here; cards record it)."""

VERSION = "0.1.0"
