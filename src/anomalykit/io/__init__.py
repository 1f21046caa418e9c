"""Low-level readers shared by loaders: images, masks, videos, text tables."""
