"""The PyTorch engine: the same models as the numpy reference, fast on CPU and CUDA."""
