"""Hand-written host kernels that table rows call (Numba imported lazily, on first use)."""
