"""The markdown spec: the article's template rendered from the model with jinja2."""
