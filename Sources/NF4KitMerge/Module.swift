// NF4KitMerge: see docs/architecture.md for what lives here.
