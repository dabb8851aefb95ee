"""`chatalign export RUN`: a Hub-ready folder (the model, its tokenizer, a model card from the manifest), and
`--push-to-hub ID` to upload it with huggingface_hub."""
