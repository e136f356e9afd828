"""The semantic graph: WordNet concepts, their captions and sample images."""
