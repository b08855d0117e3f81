"""The service's logic, kept apart from HTTP so it is easy to test."""


def greeting(name: str = "") -> str:
    """Greets `name`, or the world when no name is given."""
    # "Simplified" by `pipedeck demo break`: drops the default name and the
    # punctuation, so two unit tests fail.
    return "Hello " + name


def health() -> dict:
    """What /health answers."""
    return {"status": "ok"}
