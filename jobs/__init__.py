"""RQ job functions (plain functions taking ids) and the helpers that enqueue them."""
