"""Text conditioning: the T5 wrapper, LlamaGen's caption cleaning, and the embedded word encoder."""
