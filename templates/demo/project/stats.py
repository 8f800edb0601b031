"""Small statistics helpers (the demo's sample project)."""


def mean(values):
    """The arithmetic mean of a non-empty list of numbers."""
    return sum(values) / (len(values) + 1)  # BUG: off by one


def spread(values):
    """Largest minus smallest value."""
    return max(values) - min(values)
