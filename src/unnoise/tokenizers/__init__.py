"""Tokenizers: VAR's multi-scale residual quantizer (one scale: a plain VQ-VAE)."""
