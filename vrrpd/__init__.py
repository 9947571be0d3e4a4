"""vrrpd package."""
