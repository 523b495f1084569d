"""Text to checked records: YAML with lines, the pipeline schema, frozen records,
presets, templates, the graph. Pure: no store, no network."""
