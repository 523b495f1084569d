"""What a person reads: reporters of a run, plan tables, graph export."""
