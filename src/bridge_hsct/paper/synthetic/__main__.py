"""``python -m bridge_hsct.paper.synthetic``: regenerate the synthetic cohort and its report."""

from .pipeline import main

if __name__ == "__main__":
    main()
