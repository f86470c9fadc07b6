"""Pure builders from the model to SQL text."""
