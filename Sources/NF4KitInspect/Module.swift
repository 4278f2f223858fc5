// NF4KitInspect: see docs/architecture.md for what lives here.
