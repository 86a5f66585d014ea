import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nn import ACT_KINDS, ActSpec, make_act


def test_each_kind_is_the_torch_function():
    x = torch.linspace(-3, 3, 61)
    torch.testing.assert_close(make_act("relu")(x), x.clamp_min(0))
    torch.testing.assert_close(make_act("lrelu", slope=0.1)(x), torch.where(x > 0, x, 0.1 * x))
    torch.testing.assert_close(make_act("elu", alpha=0.5)(x), torch.where(x > 0, x, 0.5 * (x.exp() - 1)))
    # SELU's constants (Klambauer et al. 2017): lambda = 1.0507..., alpha = 1.6732...
    lam, alpha = 1.0507009873554805, 1.6732632423543772
    torch.testing.assert_close(make_act("selu")(x), lam * torch.where(x > 0, x, alpha * (x.exp() - 1)))
    torch.testing.assert_close(make_act("gelu")(x), 0.5 * x * (1 + torch.erf(x / 2**0.5)))


@pytest.mark.parametrize("kind", ACT_KINDS)
def test_activations_are_not_in_place(kind):
    x = torch.randn(10)
    before = x.clone()
    make_act(kind)(x)
    torch.testing.assert_close(x, before)


def test_paper_keeps_the_network_default():
    default = ActSpec("lrelu", slope=0.2)
    assert ActSpec.from_config(None, default) is default
    assert ActSpec.from_config("paper", default) is default
    assert ActSpec.from_config({"kind": "paper", "slope": 0.3}, default) is default
    assert ActSpec.from_config({"kind": "elu", "alpha": 0.3}, default) == ActSpec("elu", slope=0.2, alpha=0.3)
    assert isinstance(ActSpec.from_config("relu", default).layer(), nn.ReLU)


@pytest.mark.parametrize(
    "spec, words",
    [("rleu", "unknown activation 'rleu'"), ({"kind": "lrelu", "slope": -1}, "act.slope must be a number >= 0")],
)
def test_bad_act_configs_name_the_problem(spec, words):
    with pytest.raises(ConfigError) as error:
        ActSpec.from_config(spec, ActSpec())
    assert words in str(error.value)
