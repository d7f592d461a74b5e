"""What one notebook runs: its scenario, kept out of the notebook so a cell shows the lesson, not the harness."""
