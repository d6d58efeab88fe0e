"""The one error tree of gems-mcp. Lower layers state facts; the server (or the CLI) adds advice.

Everything raised on purpose is a GemsError. The server turns each into an isError tool result
whose sentence is the fact plus advice chosen by the error's class (see server.advise).
"""

from __future__ import annotations


class GemsError(Exception):
    """Root of every error gems-mcp raises on purpose; the message is one sentence of fact."""


class InvalidRequest(GemsError, ValueError):
    """A request the caller can correct: an argument out of range, a mode that does not apply."""


class Unsupported(InvalidRequest):
    """The configured model cannot do what was asked (a negative prompt, inpainting, a layout)."""


class NotFound(GemsError, LookupError):
    """An id that names nothing: a trajectory, an image, a skill or one of its files."""


class UnknownTrajectory(NotFound):
    """No trajectory has this id."""

    def __init__(self, trajectory_id: str) -> None:
        self.trajectory_id = trajectory_id
        super().__init__(f"there is no trajectory {trajectory_id!r}")


class TrajectoryFinished(InvalidRequest):
    """The trajectory takes no more rounds: done, out of budget, or without rounds."""

    def __init__(self, trajectory_id: str, reason: str) -> None:
        self.trajectory_id = trajectory_id
        super().__init__(f"trajectory {trajectory_id} {reason}")


class NotJudged(InvalidRequest):
    """The last round has no verdicts yet, so the next round cannot be planned from it."""

    def __init__(self, trajectory_id: str, round_index: int) -> None:
        self.trajectory_id = trajectory_id
        super().__init__(f"round {round_index} of trajectory {trajectory_id} has no verdicts yet")


class GenerationError(GemsError):
    """The backend could not run a request (the pipeline refused it, out of memory, load failed)."""


class JudgeError(GemsError):
    """The server judge could not load or answer; the round and its images are kept and critique can be retried."""


class GenerationCancelled(GemsError):
    """The caller asked to stop; denoising ended early."""


class StoreError(GemsError):
    """The memory store could not be read or written (busy, corrupt, too new, unwritable)."""


class InvalidSkill(GemsError, ValueError):
    """A skill file that cannot be used; the message says what is wrong and what is allowed."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), or its class name: one sentence's worth
    of a library error, for errors that quote it."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
