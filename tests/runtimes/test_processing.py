import numpy as np
import pytest

from runtimes.errors import ProcessingError
from runtimes.geometry import IDENTITY, nms
from runtimes.manifest import Preprocess, Quantization, TensorSpec
from runtimes.processing import resize_frame, to_input
from runtimes.tasks import ClassifySpec
from runtimes.tasks.formats import Yolov8Spec

PRE = Preprocess(height=4, width=6, resize="stretch", mean=[127] * 3, std=[128] * 3)


def test_to_input_nchw_float_normalises_and_transposes() -> None:
    img = np.full((1, 4, 6, 3), 255, np.uint8)
    x = to_input(img, PRE, TensorSpec(name="x", shape=[1, 3, 4, 6], layout="NCHW"))
    assert x.shape == (1, 3, 4, 6) and x.dtype == np.float32
    assert np.allclose(x, 1.0)


def test_to_input_uint8_raw_pixels_when_quantisation_matches_normalisation() -> None:
    img = np.arange(72, dtype=np.uint8).reshape(1, 4, 6, 3)
    spec = TensorSpec(name="x", shape=[1, 4, 6, 3], dtype="uint8", layout="NHWC",
                      quant=Quantization(scale=1 / 128, zero_point=127))
    assert np.array_equal(to_input(img, PRE, spec), img)


def test_to_input_quantises_when_it_does_not_match() -> None:
    img = np.full((1, 4, 6, 3), 255, np.uint8)
    spec = TensorSpec(name="x", shape=[1, 4, 6, 3], dtype="int8", layout="NHWC",
                      quant=Quantization(scale=1 / 64, zero_point=0))
    assert to_input(img, PRE, spec).max() == 64


@pytest.mark.parametrize("mode", ["stretch", "letterbox", "center_crop"])
def test_resize_modes_give_model_size(mode: str) -> None:
    pre = PRE.model_copy(update={"resize": mode})
    img, tf = resize_frame(np.zeros((30, 80, 3), np.uint8), pre)
    assert img.shape == (4, 6, 3)
    assert tf.scale_x > 0


def test_letterbox_maps_boxes_back_to_the_frame() -> None:
    pre = Preprocess(height=100, width=100, resize="letterbox")
    frame = np.zeros((50, 200, 3), np.uint8)
    _, tf = resize_frame(frame, pre)
    # A box covering the whole letterboxed content maps to the whole frame.
    row = np.array([[[50, 50, 100, 25, 0.9]]], np.float32)
    spec = Yolov8Spec(output="y", layout="rows", score_threshold=0.5)
    dets = spec.decode({"y": row}, 0, (100, 100), tf, ["thing"]).detections
    assert len(dets) == 1
    assert np.allclose(dets[0].box, (0, 0, 200, 50), atol=1)


def test_normalized_rows_scale_to_the_input() -> None:
    pre = Preprocess(height=100, width=100, resize="letterbox")
    _, tf = resize_frame(np.zeros((50, 200, 3), np.uint8), pre)
    row = np.array([[[0.5, 0.5, 1.0, 0.25, 0.9]]], np.float32)
    spec = Yolov8Spec(output="y", layout="rows", score_threshold=0.5, box_units="normalized")
    dets = spec.decode({"y": row}, 0, (100, 100), tf, []).detections
    assert np.allclose(dets[0].box, (0, 0, 200, 50), atol=1)


def test_resize_refuses_a_non_image() -> None:
    with pytest.raises(ProcessingError, match="HxWx3"):
        resize_frame(np.zeros((10, 10), np.uint8), PRE)


def test_nms_keeps_best_per_class() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    labels = np.array([0, 0, 1])
    assert nms(boxes, scores, labels, 0.5) == [0, 2]


def test_softmax_topk() -> None:
    spec = ClassifySpec(output="y", top_k=2)
    probs = spec.probabilities({"y": np.array([[1.0, 3.0, 2.0]])})
    assert np.isclose(probs.sum(), 1.0)
    top = spec.decode({"y": np.array([[1.0, 3.0, 2.0]])}, 0, (1, 1), IDENTITY, ["a", "b", "c"]).top
    assert [name for name, _ in top] == ["b", "c"]
