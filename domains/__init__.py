"""diffkit domains: adapters installed as ``diffkit.domains``."""
