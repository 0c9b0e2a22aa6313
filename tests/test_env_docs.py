"""The envs' docstring examples run as written (gym.make and gym.make_vec)."""

from __future__ import annotations

import doctest

from rl_order_execution.market import envs


def test_the_env_docstring_examples_run_as_written() -> None:
    result = doctest.testmod(envs, raise_on_error=False)
    assert result.attempted >= 10 and result.failed == 0
