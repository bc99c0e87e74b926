"""Statistics: estimators and tests on arrays and frames; they print nothing."""
