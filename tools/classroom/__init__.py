"""`make classroom` and the bigger-room setups generated from the same settings (see README.md here)."""
