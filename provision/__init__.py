"""provision: turn fresh Ubuntu/Debian machines into container hosts and deploy onto them."""

__version__ = "0.1.0"
