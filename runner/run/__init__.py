"""Running compiled steps: the executor, the generation protocol, uploads, media steps,
backends, events. It never prints, and never loads the compiler or Jinja."""
