"""A reference portal: the notice's login story against the real gateway (README.md here)."""
