"""Signal nodes without weights: loading, voice-activity segmentation, stitching."""
