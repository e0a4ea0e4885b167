"""Crash safety on the real embedded model: SIGKILL a multi-turn run at several points, resume it, and get
exactly the samples of an uninterrupted run, with no prompt answered by the model twice."""

import pytest

from pipelines.llm.cache import cache_report
from tests.support.crash import QUICK, after_calls, final_records, model_calls, run_and_kill, run_to_end

RECIPE = "recipes/multi_turn.yaml"


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume_matches_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    run_to_end(RECIPE, reference, QUICK)
    total = model_calls(reference)
    assert 12 <= total <= 24  # 6 personas x 1 turn x (user + assistant), plus any turn asked again

    crashed = tmp_path / "crashed"
    kills = 0
    for k in (1, 5, 9):  # early in the chat step, mid-way, near its end
        kills += run_and_kill(RECIPE, crashed, QUICK, after_calls(k))
        assert model_calls(crashed) < total
    assert kills == 3
    run_to_end(RECIPE, crashed, QUICK)

    assert final_records(crashed) == final_records(reference)
    report = cache_report(crashed / "llm_cache.sqlite")
    assert report["prompts_sent_twice"] == 0
    assert report["model_calls"] == report["entries"] == total
