"""The book pipeline: parameters, chapter context, build, CLI, papermill engine, Sphinx
extension, provenance."""
