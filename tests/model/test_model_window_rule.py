"""The window-size rule (transforms.stft.check_window) is one rule: the network's front, both separators and
the launch refuse the same widths with the same words."""

import numpy as np
import pytest
import torch

from stemforge.model import InferenceModel, Separator
from stemforge.model.device_separator import DeviceSeparator
from stemforge.config.run import ConfigError, build_config


@pytest.mark.parametrize("width", [250, 128])  # not a multiple of 16; a multiple of 16 but not wider than 2*offset
def test_every_front_refuses_the_same_widths_alike(small_net, width):
    offset = int(small_net.offset)
    assert width % 16 or width <= 2 * offset
    words = f"must be a multiple of 16 greater than 2\\*offset={2 * offset}, got {width}"
    with pytest.raises(ValueError, match=f"^cropsize {words}$"):
        Separator(small_net, cropsize=width, device="cpu")
    with pytest.raises(ValueError, match=f"^cropsize {words}$"):
        DeviceSeparator(small_net, cropsize=width, device="cpu")
    model = InferenceModel(small_net, device="cpu")
    with pytest.raises(ValueError, match=f"^window width {words}$"):
        model.predict(np.zeros((1, 2, model.n_bins, width), np.float32))


def test_a_width_the_rule_allows_runs(small_net):
    width = 2 * int(small_net.offset) + 16
    model = InferenceModel(small_net, device="cpu")
    with torch.no_grad():
        masks = model.predict(np.zeros((1, 2, model.n_bins, width), np.float32))
    assert masks.shape[-1] == width - 2 * int(small_net.offset)


def test_config_refuses_a_width_no_network_takes():
    with pytest.raises(ConfigError, match="cropsize must be a multiple of 16, got 40"):
        build_config({"model": {"cropsize": 40}})
