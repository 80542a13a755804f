"""Dataset layout rules and the demo datasets shipped with the platform."""
