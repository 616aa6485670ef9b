"""dreamer_tf: Dreamer agents (V1, V2, V3) in TensorFlow 2 / Keras with TFP distributions."""
__version__ = '0.1.0'
