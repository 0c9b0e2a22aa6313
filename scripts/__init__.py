"""Maintenance scripts (docs generation); not part of the installed package."""
