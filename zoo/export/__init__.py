"""Export: the pipeline of steps, TFLite conversion and quality, the export folder as a client
sees it, the model card."""
