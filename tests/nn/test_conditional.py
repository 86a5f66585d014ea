import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nn import NORM_KINDS, ConditionalNorm, NormSpec, ProjectionHead, check_labels, spectral_sigma


def plain_norm(kind: str, x: torch.Tensor) -> torch.Tensor:
    """The affine-free norms written from their formulas (training mode)."""
    if kind == "batch":  # per channel over (N, H, W), biased variance, eps 1e-5 (Ioffe & Szegedy 2015)
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5)
    if kind == "instance":  # per sample and channel over (H, W) (Ulyanov et al. 2016)
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5)
    if kind == "layer":  # per sample over (C, H, W) (Ba et al. 2016)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        var = x.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5)
    if kind == "pixel":  # per pixel over channels (Karras et al. 2018)
        return x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)
    return x  # spectral, weight, none: no layer


@pytest.mark.parametrize("kind", NORM_KINDS)
def test_each_sample_is_scaled_and_shifted_by_its_own_class(kind):
    torch.manual_seed(0)
    classes, channels = 4, 3
    layer = ConditionalNorm(NormSpec(kind), channels, classes).train()
    gamma = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0], [0.0, 1.0, -2.0], [5.0, 5.0, 5.0]])
    beta = torch.tensor([[0.0, 0.0, 0.0], [10.0, 20.0, 30.0], [-1.0, -2.0, -3.0], [0.5, 0.5, 0.5]])
    with torch.no_grad():
        layer.gamma.weight.copy_(gamma)
        layer.beta.weight.copy_(beta)
    x = torch.randn(6, channels, 5, 5) * 3 + 1
    labels = torch.tensor([3, 0, 1, 1, 2, 0])
    out = layer(x, labels)
    normed = plain_norm(kind, x)
    for i, label in enumerate(labels.tolist()):
        expected = gamma[label].view(3, 1, 1) * normed[i] + beta[label].view(3, 1, 1)
        torch.testing.assert_close(out[i], expected, atol=1e-4, rtol=1e-4)


def test_a_new_conditional_norm_is_the_plain_norm_and_has_only_the_per_class_affine():
    torch.manual_seed(0)
    layer = ConditionalNorm(NormSpec("batch"), 8, 10)
    x = torch.randn(4, 8, 3, 3)
    torch.testing.assert_close(layer(x, torch.tensor([0, 9, 3, 3])), plain_norm("batch", x), atol=1e-5, rtol=1e-5)
    assert isinstance(layer.norm, nn.BatchNorm2d) and not layer.norm.affine
    assert sum(p.numel() for p in layer.parameters()) == 2 * 10 * 8


def test_batch_conditional_norm_keeps_running_statistics_for_eval():
    torch.manual_seed(0)
    layer = ConditionalNorm(NormSpec("batch"), 2, 3)
    x = torch.randn(64, 2, 4, 4) * 2 + 5
    layer.train()
    for _ in range(200):
        layer(x, torch.zeros(64, dtype=torch.long))
    layer.eval()
    one = x[:1]
    torch.testing.assert_close(layer(one, torch.tensor([1])), plain_norm("batch", x)[:1], atol=1e-2, rtol=1e-2)


def test_projection_head_is_the_linear_term_plus_the_class_embedding_dotted_with_h():
    head = ProjectionHead(3, num_classes=2, norm=NormSpec("none"))
    with torch.no_grad():
        head.linear.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
        head.linear.bias.fill_(0.25)
        head.embed.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, -1.0]]))
    h = torch.tensor([[2.0, 1.0, 4.0], [2.0, 1.0, 4.0], [-1.0, 0.0, 2.0]])
    labels = torch.tensor([0, 1, 1])
    # By hand: w.h + b + V[y].h
    # row 0: (2 - 2 + 2) + 0.25 + (2)           = 4.25
    # row 1: (2 - 2 + 2) + 0.25 + (3 - 4)       = 1.25
    # row 2: (-1 + 0 + 1) + 0.25 + (0 - 2)      = -1.75
    torch.testing.assert_close(head(h, labels), torch.tensor([4.25, 1.25, -1.75]))


def test_unconditional_projection_head_is_the_linear_layer_alone():
    head = ProjectionHead(3, num_classes=None, bias=False)
    with torch.no_grad():
        head.linear.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
    assert head.embed is None and head.linear.bias is None
    torch.testing.assert_close(head(torch.tensor([[1.0, 1.0, 1.0], [0.0, -1.0, 2.0]])), torch.tensor([6.0, 4.0]))
    with pytest.raises(ConfigError, match="unconditional"):
        head(torch.ones(1, 3), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ConfigError, match="needs labels"):
        ProjectionHead(3, num_classes=4)(torch.ones(1, 3))


def test_spectral_projection_head_normalizes_the_linear_layer_and_the_embedding():
    torch.manual_seed(0)
    head = ProjectionHead(16, num_classes=5, norm=NormSpec("spectral")).train()
    assert hasattr(head.linear, "parametrizations") and hasattr(head.embed, "parametrizations")
    for _ in range(100):  # power iterations accumulate over training forwards
        head(torch.randn(4, 16), torch.arange(4))
    assert spectral_sigma(head.embed).item() == pytest.approx(1.0, abs=1e-3)
    assert spectral_sigma(head.linear).item() == pytest.approx(1.0, abs=1e-3)
    # With the effective weights, the logit is still w.h + b + V[y].h.
    head.eval()
    h, labels = torch.randn(3, 16), torch.tensor([4, 0, 2])
    expected = h @ head.linear.weight[0] + head.linear.bias + (head.embed.weight[labels] * h).sum(1)
    torch.testing.assert_close(head(h, labels), expected)
    weight_normed = ProjectionHead(16, num_classes=5, norm=NormSpec("weight"))
    assert hasattr(weight_normed.linear, "parametrizations") and not hasattr(weight_normed.embed, "parametrizations")


@pytest.mark.parametrize("labels, num_classes, words", [
    (None, 10, "is conditional (num_classes=10) and needs labels"),
    (torch.zeros(2, dtype=torch.long), None, "is unconditional (num_classes=None) but was given labels"),
    (torch.tensor([0, 10]), 10, "got labels in [0, 10]: labels must lie in [0, 9]"),
    (torch.tensor([-1, 3]), 10, "got labels in [-1, 3]"),
    (torch.tensor([0.0, 1.0]), 10, "needs labels of shape (2,) and an integer dtype"),
    (torch.tensor([[0, 1]]), 10, "got (1, 2)"),
    (torch.tensor([0, 1, 2]), 10, "needs labels of shape (2,)"),
])
def test_bad_labels_are_refused_in_one_line(labels, num_classes, words):
    with pytest.raises(ConfigError) as error:
        check_labels(labels, num_classes, 2, "the generator")
    message = str(error.value)
    assert words in message and "\n" not in message and message.startswith("the generator")


def test_good_labels_pass():
    check_labels(torch.tensor([0, 9]), 10, 2, "the generator")
    check_labels(torch.tensor([0, 1], dtype=torch.int32), 2, 2, "the generator")
    check_labels(None, None, 2, "the generator")


def test_the_label_check_does_not_break_a_compiled_graph():
    # fullgraph=True refuses any graph break; the range check (a read-back) is left out there.
    head = ProjectionHead(4, num_classes=3)

    def logits(h, labels):
        check_labels(labels, 3, h.shape[0], "the discriminator")
        return head(h, labels)

    compiled = torch.compile(logits, fullgraph=True, backend="eager")
    h, labels = torch.randn(2, 4), torch.tensor([2, 0])
    torch.testing.assert_close(compiled(h, labels), logits(h, labels))
