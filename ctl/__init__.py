"""ctl package."""
