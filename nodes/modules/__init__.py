"""Plain torch building blocks (no NeMo imports): quantizers, encoders, pooling."""
