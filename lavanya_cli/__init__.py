"""lavanya: load, check, repair and run IIT Madras Fastspeech2_HS voices.

The package root imports nothing heavy; synthesis modules import torch and ESPnet themselves.
"""

__version__ = "0.1.0"
