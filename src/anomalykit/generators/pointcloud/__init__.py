"""Point-cloud and mesh defect generators, one module each."""
