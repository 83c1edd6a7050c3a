"""The real models and files the tests use (provenance: assets/models/PROVENANCE-models.json)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "assets" / "models" / "efficientnet_lite0.onnx"
LABELS = ROOT / "assets" / "models" / "imagenet_labels.txt"
MODELS = ROOT / "assets" / "models"
DETECTOR = MODELS / "face_detection_short_range.tflite"  # BlazeFace as MediaPipe ships it (ssd_anchors)
TEXT_DETECTOR = MODELS / "ppocr_v4_det.onnx"  # Paddle2ONNX, dynamic H/W, segment
TEXT_ORIENTATION = MODELS / "ppocr_mobile_v2_cls.onnx"  # Paddle2ONNX, opset 11, classify (softmax inside)
FACE_MESH = MODELS / "face_landmark.tflite"  # TFLite, two outputs, raw
TEXT_READER = MODELS / "ppocr_v4_rec.onnx"  # Paddle2ONNX, dynamic width, raw (CTC probabilities)
