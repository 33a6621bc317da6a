"""The RNN image codec (Toderici et al. 2017): layers, model, entropy coding, bitstream and training.

Knows images and bits only; never imports ``flow`` or ``pipeline``.
"""
