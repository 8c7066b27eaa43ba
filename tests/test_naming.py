import numpy as np
import pytest

from keylink.naming import Naming, fit_naming, folds


def _toy(n, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(-0.8, 0.8, (n, 6, 2))
    # Landmarks: two of them are keypoints, one is the midpoint of two others.
    marks = np.stack([kp[:, 0], kp[:, 3], (kp[:, 1] + kp[:, 2]) / 2], axis=1)
    return kp, marks + rng.normal(0, noise, marks.shape)


def test_folds_cover_every_image_once():
    for n in (3, 8, 50):
        parts = folds(n)
        assert sorted(np.concatenate(parts).tolist()) == list(range(n))
        assert len(parts) == min(n, 10)


def test_few_labelled_images_already_name_keypoints_well():
    kp, marks = _toy(8, noise=0.005)
    sizes = [(100, 100)] * 8
    naming = fit_naming(kp, marks, sizes, ["a", "b", "c"], [(0, 1)], np.full(8, 50.0), "x", "f")
    test_kp, test_marks = _toy(200, seed=1)
    err_px = np.linalg.norm(naming.predict(test_kp) - test_marks, axis=-1).mean() * 50
    assert err_px < 2.0  # 2 px in a 100 px image, from 8 labelled images and 13 unknowns/coord
    assert naming.cv_error_px < 3.0
    assert naming.labelled_images == 8


def test_more_labels_do_not_hurt_and_noise_shows_in_cv_error():
    kp, marks = _toy(60, noise=0.02)
    sizes = [(100, 100)] * 60
    many = fit_naming(kp, marks, sizes, ["a", "b", "c"], [], np.full(60, 50.0), "x", "f")
    few = fit_naming(kp[:6], marks[:6], sizes[:6], ["a", "b", "c"], [], np.full(6, 50.0), "x", "f")
    assert many.cv_error_px <= few.cv_error_px
    assert many.cv_error_px > 0.5  # the 1 px label noise is visible


def test_confidence_follows_the_keypoints_a_landmark_uses():
    kp, marks = _toy(40)
    naming = fit_naming(kp, marks, [(64, 64)] * 40, ["a", "b", "c"], [], np.ones(40), "", "", 1e-4)
    conf = np.ones((1, 6))
    conf[0, 0] = 0.0  # landmark "a" is keypoint 0
    lc = naming.confidence(conf)[0]
    assert lc[0] < 0.2 and lc[1] > 0.8 and lc[2] > 0.8


def test_disagreement_is_higher_far_from_the_labelled_images():
    kp, marks = _toy(10, noise=0.01)
    naming = fit_naming(kp, marks, [(64, 64)] * 10, ["a", "b", "c"], [], np.ones(10), "", "")
    near = naming.disagreement(kp).mean()
    far = naming.disagreement(kp * 4).mean()
    assert far > near


def test_save_and_load_round_trip(tmp_path):
    kp, marks = _toy(8)
    naming = fit_naming(kp, marks, [(64, 64)] * 8, ["a", "b", "c"], [(0, 2)], np.ones(8), "d", "f")
    naming.save(tmp_path)
    loaded = Naming.load(tmp_path)
    assert loaded.names == ["a", "b", "c"] and loaded.skeleton == [(0, 2)]
    np.testing.assert_allclose(loaded.predict(kp), naming.predict(kp))
    assert Naming.load(tmp_path / "nothing") is None


def test_too_few_images_is_a_clear_error():
    kp, marks = _toy(2)
    with pytest.raises(ValueError, match="at least 3"):
        fit_naming(kp, marks, [(64, 64)] * 2, ["a", "b", "c"], [], np.ones(2), "", "")
