"""Standard benchmarks through lm-evaluation-harness (`chatalign eval harness`): a run's model and the untouched
base model on the same tasks, so the alignment tax on standard benchmarks shows beside the pipeline's own figures.
lm-eval is an optional extra (`pip install 'chatalign[harness]'`) imported only when a harness run starts."""
