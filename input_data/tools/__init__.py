"""The tools that make data files: builders, converters, downloads (python -m input_data.X)."""
