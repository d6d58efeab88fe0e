"""ModelSlot: where a judge's weights come from, when they load, and where they sit between rounds."""

from __future__ import annotations

import pytest
import torch

from gems_mcp.critique.loading import JudgeOptions, ModelSlot, resolve_source
from gems_mcp.errors import JudgeError


class PlacedModel(torch.nn.Linear):
    """A real module that remembers every device it was sent to (the CPU build cannot move it to a GPU)."""

    def __init__(self) -> None:
        super().__init__(2, 2)
        self.moves: list[str] = []

    def to(self, device, *args, **kwargs):  # type: ignore[override]
        self.moves.append(str(device))
        return self


def slot(options, flaky=False):
    loads: list[str] = []

    def load(source, dtype):
        loads.append(source)
        if flaky and len(loads) == 1:
            raise OSError("connection reset\nmore details")
        return PlacedModel(), "processor"

    return ModelSlot("org/flaky-model" if flaky else "org/model", "vlm", "a test model", options, load), loads


def test_a_hub_id_passes_through_and_a_missing_path_is_refused(tmp_path):
    assert resolve_source("Qwen/Qwen2.5-VL-3B-Instruct", "vlm") == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert resolve_source(str(tmp_path), "vlm") == str(tmp_path.resolve())
    with pytest.raises(JudgeError, match="does not exist"):
        resolve_source(str(tmp_path / "nothing"), "detect")
    (tmp_path / "weights.safetensors").write_bytes(b"")
    with pytest.raises(JudgeError, match="is a file"):
        resolve_source(str(tmp_path / "weights.safetensors"), "vlm")


def test_a_failed_load_is_one_sentence_and_the_next_use_loads_again():
    model_slot, loads = slot(JudgeOptions(device="cuda:0"), flaky=True)
    with pytest.raises(JudgeError, match=r"^GEMS_JUDGE=vlm:org/flaky-model could not be loaded as a test model: connection reset$"):
        model_slot.get()
    model, _ = model_slot.get()
    assert len(loads) == 2 and model.moves == ["cuda:0"]


def test_without_offload_the_model_stays_on_its_device():
    model_slot, _ = slot(JudgeOptions(device="cuda:0"))
    model_slot.get()
    for _ in range(3):
        with model_slot.use() as (model, _):
            pass
    assert model.moves == ["cuda:0"]


def test_with_offload_the_model_waits_on_the_cpu_and_visits_the_device_only_to_judge():
    model_slot, _ = slot(JudgeOptions(device="cuda:0", offload=True))
    model_slot.get()
    for _ in range(2):
        with model_slot.use() as (model, _):
            assert model.moves[-1] == "cuda:0"
    assert model.moves == ["cpu", "cuda:0", "cpu", "cuda:0", "cpu"]
