"""demo-web: a tiny HTTP service deployed by the pipedeck demo pipeline."""
