"""Load: content files to models."""
