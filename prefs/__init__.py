"""Fresh comparisons from the latest model(s), labelled by rules, a judge or people (Llama 2 section 3.2.1)."""
