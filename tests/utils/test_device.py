import pytest
import torch

from sedtk.utils.device import pick_device


def test_auto_and_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device("auto", local_rank=1) == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")


def test_cuda_without_a_gpu_names_the_option(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"train.device 'cuda:1': CUDA is not available"):
        pick_device("cuda:1", option="train.device")


def test_not_a_device_is_a_clear_error():
    with pytest.raises(ValueError, match=r"--device 'gpu0': not a device"):
        pick_device("gpu0")


def test_local_rank_indexes_an_unindexed_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda")  # unindexed: a multi-job decode assigns GPUs
    assert pick_device("auto", local_rank=2) == torch.device("cuda", 2)
    assert pick_device("cuda", local_rank=2) == torch.device("cuda", 2)
    assert pick_device("cuda:0", local_rank=2) == torch.device("cuda", 0)
    assert str(pick_device("cuda")) == "cuda"
