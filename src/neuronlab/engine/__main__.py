"""``python -m neuronlab.engine``: compile the training engine into the cache now."""

from neuronlab.engine import available, build

__all__: list[str] = []

if available():
    print(f"neuronlab engine compiled for float32 and float64 in {build.warm():.1f} s "
          f"(cache: {build.cache_dir()})")
else:
    print("numba is not installed: training runs on the NumPy path")
