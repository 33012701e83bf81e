"""Building blocks shared by several families (no family of its own: defines no SPECS)."""
