"""dissemination: campaigns as code for programmes that must spread their knowledge."""
