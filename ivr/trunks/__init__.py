"""The trunk feature, in one place: the inventory (``inventory``), the Asterisk config
generated from it (``render``), writing and reloading it (``apply``), trunk health from
AMI (``status``), its HTTP route (``http``) and its commands (``cli``).

Importing the package gives the inventory model only; the other modules are imported
by what needs them, so the pure parts stay free of aiohttp and AMI.
"""

from ivr.trunks.inventory import (
    ANSWER_MODES,
    Did,
    Inventory,
    InventoryError,
    Registration,
    Trunk,
    default_inventory_path,
    load_inventory,
    parse_inventory,
)

__all__ = [
    "ANSWER_MODES",
    "Did",
    "Inventory",
    "InventoryError",
    "Registration",
    "Trunk",
    "default_inventory_path",
    "load_inventory",
    "parse_inventory",
]
