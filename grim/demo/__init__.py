"""The local product run: supervised services, demo seed, traffic simulator."""
