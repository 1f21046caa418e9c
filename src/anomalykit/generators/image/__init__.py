"""Image anomaly generators (procedural and diffusion-based), one module each."""
