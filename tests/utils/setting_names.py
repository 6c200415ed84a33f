"""Whether an environment variable names a setting, for checks of deployment files."""

from __future__ import annotations

from typing import Any

from ioc.settings import Settings


def field_exists(name: str) -> bool:
    """True when IOC_A__B names field b of section a of the settings."""
    model: Any = Settings
    for part in name.removeprefix("IOC_").lower().split("__"):
        if model is None or part not in model.model_fields:
            return False
        model = model.model_fields[part].annotation
        model = model if isinstance(model, type) and hasattr(model, "model_fields") else None
    return True
