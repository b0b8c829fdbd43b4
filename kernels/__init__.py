"""dragoman.kernels: Triton kernels for GPU decoding, each beside its torch reference."""
