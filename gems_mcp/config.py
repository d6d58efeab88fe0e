"""Settings, read from GEMS_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path(user_data_dir("gems-mcp", appauthor=False))


class Settings(BaseSettings):
    """Every knob of the server. Each field is the env var GEMS_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="GEMS_", extra="ignore")

    home: Path = Field(
        default_factory=_default_home,
        description="Folder for the memory database and the images.",
    )
    model: str | None = Field(
        default=None,
        description="A diffusers pipeline: local folder or hub id. Unset: the embedded shapes-world model.",
    )
    device: Literal["auto", "cuda", "mps", "cpu"] = Field(
        default="auto", description="Where the model runs; auto picks cuda > mps > cpu."
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        default="auto", description="Weights dtype; auto is bfloat16 on cuda, float32 elsewhere."
    )
    max_rounds: int = Field(
        default=5, ge=1, le=100, description="Round budget per trajectory (GEMS uses 5)."
    )
    max_candidates: int = Field(
        default=8, ge=1, le=64, description="Largest n a single generate/refine call may ask for."
    )
    memory_budget: int = Field(
        default=4000, ge=500, le=100_000,
        description="Characters recall_memory may return for one trajectory.",
    )
    memory_recent: int = Field(
        default=3, ge=1, le=50,
        description="Rounds recall_memory shows verbatim; older ones fold into a digest.",
    )
    skills_path: str = Field(
        default="",
        description="Extra skill folders, os.pathsep-separated; they override built-ins by id.",
    )
    judge: Literal["auto", "exact", "none"] = Field(
        default="auto",
        description="Server judge: auto uses the backend's exact judge when it has one; none leaves verification to the agent.",
    )
    preload: bool = Field(default=False, description="Load the model at start instead of on first use.")
    thumbnail_size: int = Field(
        default=512, ge=64, le=1024, description="Longest side of the thumbnails tools return."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Log level of the server (stderr)."
    )

    @field_validator("home", mode="before")
    @classmethod
    def _expand(cls, value: object) -> object:
        if isinstance(value, str):
            return Path(os.path.expanduser(value))
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def skill_dirs(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.skills_path.split(os.pathsep) if p.strip()]


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
