"""Frames and motion: block matching, compensation, vector coding, dense flow, flow files, metrics, losses.

Flow convention: (H, W, 2) float32, (dx, dy), forward t -> t+1. This package never imports ``codec``
or ``pipeline``.
"""
