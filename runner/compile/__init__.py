"""Records to exact requests and cache keys: media sources, each kind's request body,
keys and seeds, steps, lint, and the check behind ``validate``."""
