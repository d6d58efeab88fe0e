"""Settings, read from GEMS_* environment variables."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path(user_data_dir("gems-mcp", appauthor=False))


class Settings(BaseSettings):
    """Every knob of the server. Each field is the env var GEMS_<NAME>."""

    # An empty variable is an unset one: clients fill settings the user left blank with "" (Claude Code's
    # ${GEMS_HOME:-}, an MCPB form's empty field), and GEMS_HOME="" must not mean the current directory.
    model_config = SettingsConfigDict(env_prefix="GEMS_", extra="ignore", env_ignore_empty=True)

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
    judge: str = Field(
        default="auto",
        description="Server judge: auto uses the backend's exact judge when it has one; none leaves verification to "
        "the agent; vlm:<model> asks a vision-language model (P(yes)); detect:<model> an open-vocabulary detector "
        "(boxes); detect:<model>,vlm:<model> both (the detector takes what it can decide). <model>: hub id or folder.",
    )
    judge_offload: bool = Field(
        default=False, description="Keep the judge model on the CPU between rounds; it moves to the device to judge."
    )
    judge_threshold: float = Field(
        default=0.3, gt=0.0, lt=1.0, description="Detector score below which a box does not count as an object."
    )
    judge_batch: int = Field(
        default=8, ge=1, le=256, description="Image-question pairs (VLM) or images (detector) per forward pass."
    )
    preload: bool = Field(default=False, description="Load the model at start instead of on first use.")
    offload: Literal["none", "model", "sequential", "auto"] = Field(
        default="auto",
        description="CPU offload of the pipeline: model (one component on the GPU at a time), sequential (one layer "
        "at a time: least memory, slowest); auto picks from free VRAM and the weights' size on disk.",
    )
    compile: bool = Field(
        default=False, description="torch.compile the denoiser (warm-up at load: minutes; then faster steps)."
    )
    devices: str = Field(
        default="",
        description="Several devices, comma-separated (cuda:0,cuda:1): one pipeline each; candidates and calls are "
        "spread over them. Empty: the one GEMS_DEVICE.",
    )
    backend: Literal["local", "ray"] = Field(
        default="local", description="Where models run: in this process, or as Ray Serve deployments (ray)."
    )
    ray_address: str | None = Field(
        default=None, description="Ray cluster to join (ray://host:10001 or auto); unset starts a local one."
    )
    ray_replicas: int = Field(
        default=0, ge=0, le=1024, description="Generator replicas on Ray; 0 is one per GPU in the cluster (1 without)."
    )
    thumbnail_size: int = Field(
        default=512, ge=64, le=1024, description="Longest side of the thumbnails tools return."
    )
    http_token: SecretStr | None = Field(
        default=None,
        description="Bearer token every HTTP request must carry (Authorization: Bearer <token>); "
        "required to bind anywhere but loopback. At least 16 characters.",
    )
    http_allowed_hosts: str = Field(
        default="",
        description="Non-loopback HTTP binds: Host header values to accept, comma-separated (gpu-box:8000, "
        "10.0.0.5:*); browsers' Origin must then be http(s):// one of them. Empty: Host/Origin are not checked.",
    )
    retention_days: float | None = Field(
        default=None, gt=0,
        description="Delete trajectories (and their images) not updated for this many days, at start.",
    )
    max_lessons: int = Field(
        default=2000, ge=1, le=1_000_000, description="Lessons kept; past it the least recalled (then oldest) go."
    )
    max_lessons_mb: float = Field(
        default=5.0, gt=0, le=1024, description="Size cap of all lessons' text, in MB; past it the least recalled go."
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

    @field_validator("devices")
    @classmethod
    def _device_list(cls, value: str) -> str:
        names = [d.strip() for d in value.split(",") if d.strip()]
        for name in names:
            if not re.fullmatch(r"(cuda|cpu)(:\d+)?|mps", name):
                raise ValueError(f"GEMS_DEVICES entry {name!r} is not a device; use cuda:0,cuda:1 (or cpu, mps)")
        if len(set(names)) != len(names):
            raise ValueError("GEMS_DEVICES names a device twice; give each device once")
        return ",".join(names)

    @property
    def device_list(self) -> list[str]:
        """GEMS_DEVICES as a list; empty when one device (GEMS_DEVICE) is used."""
        return [d for d in self.devices.split(",") if d]

    @field_validator("judge")
    @classmethod
    def _judge_spec(cls, value: str) -> str:
        parse_judge(value)
        return value.strip()

    @property
    def judge_models(self) -> dict[str, str]:
        """The model judges GEMS_JUDGE names, by kind ('vlm', 'detect'); empty for auto, exact and none."""
        return parse_judge(self.judge)

    @field_validator("http_token")
    @classmethod
    def _token_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("GEMS_HTTP_TOKEN must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    @property
    def allowed_hosts(self) -> list[str]:
        """GEMS_HTTP_ALLOWED_HOSTS as a list."""
        return [h.strip() for h in self.http_allowed_hosts.split(",") if h.strip()]

    @property
    def skill_dirs(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.skills_path.split(os.pathsep) if p.strip()]


JUDGE_FORMS = "auto, exact, none, vlm:<model>, detect:<model> or detect:<model>,vlm:<model>"


def parse_judge(value: str) -> dict[str, str]:
    """'detect:X,vlm:Y' -> {'detect': 'X', 'vlm': 'Y'}; {} for auto, exact and none; ValueError otherwise."""
    value = value.strip()
    if value in ("auto", "exact", "none"):
        return {}
    models: dict[str, str] = {}
    for part in value.split(","):
        kind, sep, model = part.strip().partition(":")
        kind, model = kind.strip().lower(), model.strip()
        if not sep or kind not in ("vlm", "detect") or not model:
            raise ValueError(f"GEMS_JUDGE must be {JUDGE_FORMS}; got {value!r}")
        if kind in models:
            raise ValueError(f"GEMS_JUDGE names two {kind} models; give at most one vlm and one detect")
        models[kind] = model
    return models


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
