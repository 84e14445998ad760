"""Model files: strict checkpoint reading, the loaders that build models from files, the known official files."""
