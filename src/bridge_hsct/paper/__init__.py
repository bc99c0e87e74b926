"""The paper's content: its tables, figures, words, published values and audit."""
