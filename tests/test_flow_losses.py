import numpy as np
import pytest
import torch

from flow.losses import FlowConsistencyLoss, reference_flow, warp_tensor


def test_warp_tensor_shifts_by_the_flow() -> None:
    image = torch.arange(20.0).reshape(1, 1, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 0] = 1  # sample one pixel to the right
    out = warp_tensor(image, flow)
    assert torch.allclose(out[..., :-1], image[..., 1:]) and torch.allclose(out[..., -1], image[..., -1])


def test_loss_is_minimal_for_the_originals_and_grows_with_flicker() -> None:
    torch.manual_seed(0)
    target = torch.rand(2, 2, 3, 16, 16)
    flow = torch.randn(2, 2, 16, 16)
    loss = FlowConsistencyLoss(eps=1e-3)
    same = loss(target.clone(), target, flow)
    assert same.item() == pytest.approx(1e-3, rel=1e-4)
    flicker = target.clone()
    flicker[:, 1] += 0.1  # frame t+1 brighter: temporal inconsistency
    assert loss(flicker, target, flow).item() > 0.09
    steady = target + 0.1  # the same offset on both frames is consistent
    assert loss(steady, target, flow).item() < 2e-3
    assert loss(flicker, target).item() > 0.09  # flow=None: zero motion


def test_mask_restricts_the_loss() -> None:
    target = torch.rand(1, 2, 3, 8, 8)
    recon = target.clone()
    recon[:, 1, :, :, :4] += 0.5
    valid = torch.zeros(1, 1, 8, 8)
    valid[..., 4:] = 1
    assert FlowConsistencyLoss()(recon, target, torch.zeros(1, 2, 8, 8), valid).item() < 2e-3


def test_gradcheck() -> None:
    torch.manual_seed(1)
    target = torch.rand(1, 2, 3, 5, 6, dtype=torch.float64)
    recon = torch.rand(1, 2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    flow = (torch.rand(1, 2, 5, 6, dtype=torch.float64) - 0.5) * 3
    valid = (torch.rand(1, 1, 5, 6) > 0.2).double()
    loss = FlowConsistencyLoss(eps=1e-2)
    assert torch.autograd.gradcheck(lambda r: loss(r, target, flow, valid), (recon,))


def test_bad_shapes() -> None:
    x = torch.rand(1, 2, 3, 8, 8)
    with pytest.raises(ValueError, match="frames t and t\\+1"):
        FlowConsistencyLoss()(x[:, :1], x[:, :1])
    with pytest.raises(ValueError, match="flow has shape"):
        FlowConsistencyLoss()(x, x, torch.zeros(1, 2, 4, 4))


def test_reference_flow_shapes() -> None:
    rng = np.random.default_rng(0)
    target = rng.random((2, 2, 3, 32, 48)).astype(np.float32)
    flow, valid = reference_flow(target, preset="ultrafast")
    assert flow.shape == (2, 2, 32, 48) and valid.shape == (2, 1, 32, 48) and valid.dtype == bool
