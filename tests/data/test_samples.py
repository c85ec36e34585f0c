"""The built-in sample set (gramgan.data.samples): offline, RGB, disjoint splits."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from gramgan.data.samples import SAMPLE_TRAIN, SAMPLE_VAL, available_samples, load_samples, sample_source


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the sample set tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_samples_load_offline_as_rgb_uint8(no_network):
    images = load_samples(available_samples())
    assert list(images) == [*SAMPLE_TRAIN, *SAMPLE_VAL]
    for name, image in images.items():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        assert min(image.shape[:2]) >= 256, name  # big enough for 192 crops
        assert image.std() > 10, name  # a photo, not a flat placeholder
    assert images["astronaut"].shape == (512, 512, 3)


def test_splits_are_disjoint_and_sources_match(no_network):
    assert not set(SAMPLE_TRAIN) & set(SAMPLE_VAL)
    train, val = sample_source("train"), sample_source("val")
    assert len(train) == len(SAMPLE_TRAIN) and [val.name(i) for i in range(len(val))] == list(SAMPLE_VAL)
    assert train.load(0).shape[0] == 3
    with pytest.raises(ValueError, match="split"):
        sample_source("test")


def test_unknown_sample_is_named():
    with pytest.raises(ValueError, match="'lena'"):
        load_samples(["lena"])
