"""The web process's torch-free weights facts agree with torch and torchvision."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from ganlab.models.encoders import encoder_entry
from ganlab.weight_files import TORCHVISION_FILES, hub_checkpoint_dir, missing_imagenet_files


def test_file_names_are_torchvisions_imagenet1k_v1_files():
    enums = {
        "resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V1,
        "vgg16": torchvision.models.VGG16_Weights.IMAGENET1K_V1,
    }
    for name, weights in enums.items():
        assert TORCHVISION_FILES[name] == weights.url.rsplit("/", 1)[-1]
        assert encoder_entry(name).weights.filename == TORCHVISION_FILES[name]
    # the README and the errors name V1; V2 is another file
    assert TORCHVISION_FILES["resnet50"] == "resnet50-0676ba61.pth"
    assert torchvision.models.ResNet50_Weights.IMAGENET1K_V2.url.endswith("resnet50-11ad3fa6.pth")


@pytest.mark.parametrize("env", [{"TORCH_HOME": "/srv/torch"}, {"XDG_CACHE_HOME": "/srv/cache"}, {}])
def test_hub_folder_is_where_torch_looks(env, monkeypatch):
    for name in ("TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert hub_checkpoint_dir() == Path(torch.hub.get_dir()) / "checkpoints"


def test_missing_files_name_the_path_to_fill(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    assert missing_imagenet_files(["resnet50", "vgg16", "efficientnet_lite0"]) == {
        "resnet50": folder / "resnet50-0676ba61.pth",
        "vgg16": folder / "vgg16-397923af.pth",
    }
    folder.mkdir(parents=True)
    (folder / "vgg16-397923af.pth").write_bytes(b"present")
    assert list(missing_imagenet_files(["resnet50", "vgg16"])) == ["resnet50"]


def test_the_readme_names_the_files_the_code_loads():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Pretrained weights (offline)", 1)[1].split("\n## ", 1)[0]
    for filename in TORCHVISION_FILES.values():
        assert f"`{filename}`" in section
    assert "`resnet50-11ad3fa6.pth`) is a different network and is not accepted" in section
