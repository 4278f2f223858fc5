// NF4KitFormats: see docs/architecture.md for what lives here.
