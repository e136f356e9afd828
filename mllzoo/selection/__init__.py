"""Selection: match classes to concepts, score every labeled model per class, keep the top-k."""
