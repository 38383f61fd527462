"""The data layer: named pools from config, drivers from plugins, the sqlor interface."""
