"""The examples in the docstrings of the robustness and experiment modules
run as written."""

import doctest
import importlib

import pytest

MODULES = ["tf_sparsesign.experiments.adversary",
           "tf_sparsesign.experiments.attack",
           "tf_sparsesign.experiments.runs",
           "tf_sparsesign.experiments.models",
           "tf_sparsesign.experiments.methods",
           "tf_sparsesign.config",
           "tf_sparsesign.policy.profile",
           "tf_sparsesign.policy.ranking",
           "tf_sparsesign.experiments.plan_times"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
