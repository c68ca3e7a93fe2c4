"""CityWatch: open, accountable city video surveillance."""

__version__ = "0.1.0"
