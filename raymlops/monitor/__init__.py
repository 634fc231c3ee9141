"""The drift monitor: windows, detectors and health stats over the prediction stream."""
