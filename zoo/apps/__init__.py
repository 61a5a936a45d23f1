"""What users run: zoo.load (pretrained), the zoo command line and the page's server."""
