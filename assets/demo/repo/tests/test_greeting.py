import unittest

from app.greeting import greeting, health


class GreetingTest(unittest.TestCase):
    def test_greets_the_world_by_default(self):
        self.assertEqual(greeting(), "Hello, world!")

    def test_greets_by_name(self):
        self.assertEqual(greeting("Ada"), "Hello, Ada!")

    def test_ignores_surrounding_spaces(self):
        self.assertEqual(greeting("  Ada "), "Hello, Ada!")

    def test_health_is_ok(self):
        self.assertEqual(health(), {"status": "ok"})


if __name__ == "__main__":
    unittest.main()
