"""Runs in the TFLite toolchain (tensorflow): a tiny Keras CNN saved as .h5, SavedModel and .tflite."""

import sys
from pathlib import Path

import tensorflow as tf

out = Path(sys.argv[1])
tf.random.set_seed(0)
inp = tf.keras.Input((64, 64, 3), name="image")
x = tf.keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
x = tf.keras.layers.GlobalAveragePooling2D()(x)
model = tf.keras.Model(inp, tf.keras.layers.Dense(5)(x))
model.save(str(out / "model.h5"))
model.export(str(out / "saved"))
(out / "model.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
print("ok")
