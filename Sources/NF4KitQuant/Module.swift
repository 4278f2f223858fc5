// NF4KitQuant: see docs/architecture.md for what lives here.
