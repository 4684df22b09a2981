"""Reports over finished (or running) run directories: `reports.compare`, `reports.plot`."""

import os

# Set before TensorFlow loads (TensorBoard's event reader imports it): keep its C++ logs quiet.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
