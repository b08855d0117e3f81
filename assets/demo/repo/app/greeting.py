"""The service's logic, kept apart from HTTP so it is easy to test."""


def greeting(name: str = "") -> str:
    """Greets `name`, or the world when no name is given."""
    name = name.strip() or "world"
    return f"Hello, {name}!"


def health() -> dict:
    """What /health answers."""
    return {"status": "ok"}
