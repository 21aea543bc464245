"""Write a real monitor.yaml for output tests and load it the way the daemon does."""

from __future__ import annotations

import base64
import os
import textwrap
from pathlib import Path

from monitor.config import Config, load_config


def new_webhook_secret(seed: bytes = b"") -> str:
    """A `whsec_` secret (24 random bytes, or derived from `seed` for a stable one)."""
    key = (seed * 24)[:24] if seed else os.urandom(24)
    return "whsec_" + base64.b64encode(key).decode()


def write_config(directory: Path, outputs_yaml: str, extra_yaml: str = "") -> Config:
    """A config with a state file in `directory` and the given `outputs:` section."""
    text = "state:\n  path: state.db\noutputs:\n" + textwrap.indent(textwrap.dedent(outputs_yaml).strip(), "  ")
    path = directory / "monitor.yaml"
    path.write_text(text + "\n" + textwrap.dedent(extra_yaml))
    return load_config(path)
