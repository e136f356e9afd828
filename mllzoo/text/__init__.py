"""Text: the embedders behind the hooks, the offline MiniLM, class descriptions."""
