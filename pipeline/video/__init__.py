"""The closed-loop video coder (issue 5): motion-compensated RNN residual coding and its container."""
