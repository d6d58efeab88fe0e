"""Every resource URI the server publishes, built in one place."""

from __future__ import annotations

IMAGE = "gems://images/{image_id}"
TRAJECTORY = "gems://trajectories/{trajectory_id}"
SHEET = "gems://trajectories/{trajectory_id}/sheet.png"
SKILL = "skill://{skill_id}"
SKILL_FILE = "skill://{skill_id}/{+file}"


def image(image_id: str) -> str:
    return IMAGE.format(image_id=image_id)


def trajectory(trajectory_id: str) -> str:
    return TRAJECTORY.format(trajectory_id=trajectory_id)


def sheet(trajectory_id: str) -> str:
    return SHEET.format(trajectory_id=trajectory_id)


def skill(skill_id: str) -> str:
    return SKILL.format(skill_id=skill_id)
