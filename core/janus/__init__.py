"""Janus-Pro (deepseek-ai): image generation, the path Anchor Token Matching edits on."""
