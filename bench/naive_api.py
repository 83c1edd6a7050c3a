"""The naive service the device API is measured against: the pattern of the documents this product was built
from — FastAPI in front of an ONNX Runtime FP32 session, one image per request, decoded and preprocessed in the
handler. Run by bench/api.py as its own process:

    .venv/bin/python bench/naive_api.py MODEL.onnx PORT
"""

from __future__ import annotations

import sys

import cv2
import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

MEAN = np.array([127.0, 127.0, 127.0], np.float32)  # EfficientNet-Lite0's preprocessing
STD = np.array([128.0, 128.0, 128.0], np.float32)


def make(model: str) -> FastAPI:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    app = FastAPI()

    def infer(data: bytes) -> dict[str, object]:
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        image = cv2.cvtColor(cv2.resize(frame, (224, 224)), cv2.COLOR_BGR2RGB).astype(np.float32)
        x = ((image - MEAN) / STD).transpose(2, 0, 1)[None]
        logits = session.run(None, {name: x})[0][0]
        top = np.argsort(-logits)[:5]
        return {"top": [[int(i), float(logits[i])] for i in top]}

    @app.post("/v1/predict")
    async def predict(request: Request) -> dict[str, object]:
        return await run_in_threadpool(infer, await request.body())

    return app


if __name__ == "__main__":
    uvicorn.run(make(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
