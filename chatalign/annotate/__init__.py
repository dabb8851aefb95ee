"""Preference labels from people: `chatalign annotate FILE` serves a local page with the Llama 2 protocol."""
