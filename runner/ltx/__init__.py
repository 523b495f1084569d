"""What fal's LTX endpoints take and cost: the endpoint registry, fal's input schemas,
prices."""
