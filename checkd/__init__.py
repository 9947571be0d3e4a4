"""checkd package."""
