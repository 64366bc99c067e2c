"""The partner's task page marks a task past its deadline by text and symbol (not by colour alone), by the one
rule for late work: only a task still to be accepted or completed can be late."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]
ARTICLE = re.compile(r'<article class="task card[^"]*" aria-labelledby="task-([0-9a-f-]+)">(.*?)</article>', re.S)


def test_a_task_past_its_deadline_says_so_and_an_answered_one_never_does(world: World) -> None:
    tasks = {t["id"]: t for t in world.client.get(f"{API}/tasks", params={"limit": 200},
                                                  headers=world.auth("politi")).json()["items"]}
    now = datetime.now(timezone.utc)

    def late(task: dict[str, object]) -> bool:
        due = task["due_at"]
        return task["status"] in ("requested", "accepted") and due is not None and \
            datetime.fromisoformat(str(due)) < now

    page = signed_in(TestClient(world.app), "politi").get("/tasks").text
    shown = {task_id: body for task_id, body in ARTICLE.findall(page)}
    assert shown and set(shown) <= set(tasks)
    assert any(late(tasks[i]) for i in shown) and any(not late(tasks[i]) for i in shown)  # the demo has both
    for task_id, body in shown.items():
        assert ("! over frist" in body) is late(tasks[task_id]), (tasks[task_id]["status"], tasks[task_id]["due_at"])
