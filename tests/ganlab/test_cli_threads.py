"""``python -m ganlab --threads N``: a CPU run takes only the cores it is given."""

from __future__ import annotations

import pytest
import torch

from ganlab.__main__ import main


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_option_sets_torch_threads_before_the_command(tmp_path, restore_threads, capsys):
    torch.set_num_threads(2)
    assert main(["--threads", "1", "demo", str(tmp_path / "tiles"), "--train-per-class", "1", "--test-per-class", "1", "--size", "32"]) == 0
    assert torch.get_num_threads() == 1
    assert "wrote 4 tiles" in capsys.readouterr().out


def test_threads_below_one_is_refused_with_its_name(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--threads", "0", "demo", str(tmp_path / "tiles")])
    assert "--threads must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "tiles").exists()
