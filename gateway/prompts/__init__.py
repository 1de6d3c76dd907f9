"""Prompt templates, server-kept conversations and the context truncation they need."""
