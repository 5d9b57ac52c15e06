"""The scorer rates frames at the resolution and framing it was validated on in training."""
import cv2
import numpy as np
import pytest
import torch

from keyframes.data import ImageFolderDataset
from keyframes.scorer import SentimentScorer, centre_square, create_scorer, frames_to_tensor
from media.layouts import ClipRecord
from training.checkpoints import save_checkpoint


def test_scored_frames_match_the_validation_images_of_training(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (45, 80, 3), dtype=np.uint8)
    path = tmp_path / "still.png"  # lossless, so the file holds exactly ``rgb``
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    record = ClipRecord(clip_id="still", path=path, label=0, class_names=("a", "b"), split="val")
    val_item, _ = ImageFolderDataset([record], input_size=32, train=False)[0]
    scored = frames_to_tensor([rgb], 32)[0]
    assert scored.shape == val_item.shape == (3, 32, 32)
    torch.testing.assert_close(scored, val_item)


@pytest.mark.slow  # builds and runs ResNet scorers
def test_only_the_centre_square_is_scored():
    wide = np.full((30, 90, 3), 100, np.uint8)
    other_sides = wide.copy()
    other_sides[:, :30] = 255
    other_sides[:, 60:] = 0
    assert centre_square(wide, 30).shape == (30, 30, 3)
    np.testing.assert_array_equal(centre_square(wide, 30), centre_square(other_sides, 30))
    torch.manual_seed(0)
    scorer = SentimentScorer(create_scorer(num_classes=3, depth=18), ("p", "n", "g"), input_size=30)
    np.testing.assert_allclose(scorer.score([wide]), scorer.score([other_sides]), rtol=1e-5, atol=1e-6)


def _run(tmp_path, input_size):
    torch.manual_seed(0)
    run = tmp_path / "scorer"
    save_checkpoint(run / "best", state_dict=create_scorer(num_classes=3, depth=18).state_dict(),
                    meta={"config": {"model": {"depth": 18}, "data": {"input_size": input_size}},
                          "class_names": ["Positive", "Neutral", "Negative"], "epoch": 1, "metrics": {}})
    return run


@pytest.mark.slow  # builds and runs ResNet scorers
def test_checkpoint_scores_at_its_training_size(tmp_path):
    run = _run(tmp_path, 48)
    assert SentimentScorer.from_checkpoint(run).input_size == 48
    assert SentimentScorer.from_checkpoint(run, input_size=48).input_size == 48
    with pytest.raises(ValueError, match=r"trained at 48 px .* asked to score at 96 px .*keyframes.score_size: 48"):
        SentimentScorer.from_checkpoint(run, input_size=96)


def test_scores_are_the_models_probabilities():
    """Frames are scored by a faster copy (batch norms folded, channels-last); the probabilities
    are the trained model's own to float rounding."""
    torch.manual_seed(0)
    model = create_scorer(num_classes=3, depth=18)
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding them has something to do
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    scorer = SentimentScorer(model, ("p", "n", "g"), input_size=40)
    frames = [np.random.default_rng(i).integers(0, 256, (50, 70, 3), dtype=np.uint8) for i in range(5)]
    with torch.no_grad():
        expected = torch.softmax(model.eval()(frames_to_tensor(frames, 40)), dim=1).numpy()
    np.testing.assert_allclose(scorer.score(frames), expected, atol=1e-5)
    assert model.bn1.running_var.min() >= 0.5  # the model given is untouched


@pytest.mark.slow  # scores with bfloat16 autocast, slow on CPUs without native bf16
def test_bfloat16_scores_are_float32_probabilities_close_to_the_float32_ones(tmp_path):
    """keyframes.precision: bfloat16 computes the network in bfloat16 (faster on CPUs and GPUs
    with native bfloat16) and returns float32 probabilities within bfloat16's rounding of the
    float32 scorer's; the model given stays float32."""
    torch.manual_seed(0)
    model = create_scorer(num_classes=3, depth=18)
    frames = [np.random.default_rng(i).integers(0, 256, (50, 70, 3), dtype=np.uint8) for i in range(6)]
    exact = SentimentScorer(model, ("p", "n", "g"), input_size=40).score(frames)
    fast = SentimentScorer(model, ("p", "n", "g"), input_size=40, precision="bfloat16")
    probs = fast.score(frames)
    assert probs.dtype == np.float32 and probs.shape == (6, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs, exact, atol=3e-2)
    assert not np.array_equal(probs, exact)  # it does compute in bfloat16
    assert next(model.parameters()).dtype == torch.float32
    run = _run(tmp_path, 40)
    assert SentimentScorer.from_checkpoint(run, precision="bfloat16").precision == "bfloat16"
    with pytest.raises(ValueError, match=r"precision must be one of \['float32', 'bfloat16'\], got 'float16'"):
        SentimentScorer(model, ("p", "n", "g"), input_size=40, precision="float16")


@pytest.mark.slow  # builds and runs ResNet scorers
def test_bfloat16_without_native_support_is_said_once(monkeypatch, caplog):
    """Where bfloat16 is emulated (an AVX2-only CPU) it is slower than float32: the user is told,
    once per device, and scoring still works."""
    import keyframes.scorer as scorer_module

    monkeypatch.setattr(scorer_module, "native_bfloat16", lambda device: False)
    monkeypatch.setattr(scorer_module, "_warned_bf16_devices", set())
    torch.manual_seed(0)
    model = create_scorer(num_classes=3, depth=18)
    with caplog.at_level("WARNING", logger="keyframes.scorer"):
        first = SentimentScorer(model, ("p", "n", "g"), input_size=32, precision="bfloat16")
        SentimentScorer(model, ("p", "n", "g"), input_size=32, precision="bfloat16")
        SentimentScorer(model, ("p", "n", "g"), input_size=32)
    warnings = [r.getMessage() for r in caplog.records if "no native bfloat16" in r.getMessage()]
    assert len(warnings) == 1 and "slower than float32" in warnings[0] and "cpu" in warnings[0]
    assert first.score([np.zeros((40, 40, 3), np.uint8)]).shape == (1, 3)


def test_frames_are_scored_on_the_scorers_device_and_moved_once(stand_in_host):
    """With the scorer on ``meta`` (the stand-in for a GPU) every batch is made and scored there;
    the probabilities of all batches reach the host in one move."""
    scorer = SentimentScorer(create_scorer(num_classes=3, depth=18), ("p", "n", "g"), input_size=32,
                             batch_size=2, device="meta")
    frames = [np.zeros((40, 60, 3), np.uint8)] * 5
    assert scorer.score(frames).shape == (5, 3)
    assert stand_in_host == [(5, 3)]
